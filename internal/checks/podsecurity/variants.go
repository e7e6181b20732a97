package podsecurity

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
)

// Variant is one way a pod tries to reach the node: a mutation of a
// compliant pod and the word Pod Security "restricted" must reject it with.
type Variant struct {
	// Name is short and stable; it names the dry-run pod and the evidence.
	Name string
	// Keyword must appear in the PodSecurity violation (its forbidden
	// reason or detail); a rejection for another reason proves nothing
	// about this variant.
	Keyword string
	// Mutate turns a compliant pod into the forbidden one.
	Mutate func(*corev1.Pod)
}

// Variants are the forbidden pod forms, one breakout each (CIS 1.10
// 5.2.2-5.2.13, MTB PL1 BC-CPI and BC-HI). Each changes only what it is
// about; where the API's own validation would refuse the combination with
// the compliant pod's allowPrivilegeEscalation=false (privileged,
// CAP_SYS_ADMIN), that field is removed so the request reaches admission.
var Variants = []Variant{
	{Name: "privileged", Keyword: "privileged", Mutate: func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.SecurityContext.Privileged = ptr.To(true)
		c.SecurityContext.AllowPrivilegeEscalation = nil
	}},
	{Name: "host-path", Keyword: "hostPath", Mutate: func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "host-root",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		c := &p.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "host-root", MountPath: "/host", ReadOnly: true})
	}},
	{Name: "host-network", Keyword: "hostNetwork=true", Mutate: func(p *corev1.Pod) { p.Spec.HostNetwork = true }},
	{Name: "host-pid", Keyword: "hostPID=true", Mutate: func(p *corev1.Pod) { p.Spec.HostPID = true }},
	{Name: "host-ipc", Keyword: "hostIPC=true", Mutate: func(p *corev1.Pod) { p.Spec.HostIPC = true }},
	{Name: "host-port", Keyword: "hostPort", Mutate: func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports,
			corev1.ContainerPort{Name: "http", ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolTCP})
	}},
	{Name: "cap-net-admin", Keyword: `"NET_ADMIN"`, Mutate: addCapability("NET_ADMIN")},
	{Name: "cap-sys-admin", Keyword: `"SYS_ADMIN"`, Mutate: func(p *corev1.Pod) {
		addCapability("SYS_ADMIN")(p)
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	}},
	{Name: "cap-net-raw", Keyword: `"NET_RAW"`, Mutate: addCapability("NET_RAW")},
	{Name: "caps-not-dropped", Keyword: `capabilities.drop=["ALL"]`, Mutate: func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.Capabilities = nil
	}},
	{Name: "privilege-escalation", Keyword: "allowPrivilegeEscalation", Mutate: func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	}},
	{Name: "run-as-root", Keyword: "runAsUser=0", Mutate: func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.RunAsUser = ptr.To[int64](0)
	}},
	{Name: "run-as-non-root-false", Keyword: "runAsNonRoot", Mutate: func(p *corev1.Pod) {
		p.Spec.SecurityContext.RunAsNonRoot = ptr.To(false)
		p.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
	}},
	{Name: "seccomp-unconfined", Keyword: "seccompProfile", Mutate: func(p *corev1.Pod) {
		p.Spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	}},
	{Name: "apparmor-unconfined", Keyword: "AppArmor", Mutate: func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	}},
	{Name: "selinux-spc", Keyword: "seLinuxOptions", Mutate: func(p *corev1.Pod) {
		p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"}
	}},
	{Name: "unsafe-sysctl", Keyword: "kernel.msgmax", Mutate: func(p *corev1.Pod) {
		p.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}
	}},
	{Name: "windows-host-process", Keyword: "hostProcess", Mutate: func(p *corev1.Pod) {
		// The API requires host networking for HostProcess pods.
		p.Spec.HostNetwork = true
		p.Spec.SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}
	}},
	{Name: "probe-host", Keyword: "probe or lifecycle host", Mutate: func(p *corev1.Pod) {
		// A kubelet HTTP probe to another host: the kubelet would connect
		// from the node on the pod's behalf.
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Host: "169.254.169.254", Path: "/", Port: intstr.FromInt32(80)}}}
	}},
}

func addCapability(c corev1.Capability) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		sc := p.Spec.Containers[0].SecurityContext
		if sc.Capabilities == nil {
			sc.Capabilities = &corev1.Capabilities{}
		}
		sc.Capabilities.Add = append(sc.Capabilities.Add, c)
	}
}

// VariantNamed returns the variant called name.
func VariantNamed(name string) (Variant, bool) {
	for _, v := range Variants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

// Compliant is a pod that satisfies Pod Security "restricted": non-root,
// no privilege escalation, every capability dropped, seccomp RuntimeDefault,
// read-only root filesystem, bounded resources (so a quota on the namespace
// does not reject it for a reason that has nothing to do with security).
func Compliant(namespace, name, image string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec:       CompliantSpec(image, []string{"version"}),
	}
}

// CompliantSpec is the pod spec of Compliant, running the probe program
// with args (workload templates use it too).
func CompliantSpec(image string, args []string) corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](65532),
			RunAsGroup:     ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "probe",
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            args,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				RunAsNonRoot:             ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
}

// Forbidden returns the compliant pod with v applied.
func Forbidden(v Variant, namespace, name, image string, labels map[string]string) *corev1.Pod {
	p := Compliant(namespace, name, image, labels)
	v.Mutate(p)
	return p
}

// Violation is a Pod Security rejection as the API server words it:
// `pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (...), ...`.
type Violation struct {
	// Policy is the enforced level and version, e.g. "restricted:latest".
	Policy string
	// Level is the level alone ("restricted", "baseline").
	Level string
	// Details is everything after the policy: the forbidden reasons with
	// their details, as PodSecurity lists them.
	Details string
}

var violationRE = regexp.MustCompile(`violates PodSecurity "([a-z]+)(?::([^"]*))?": (.+)$`)

// ParseViolation extracts a PodSecurity violation from an API error message
// (a direct rejection, or a controller's FailedCreate event that quotes it).
func ParseViolation(msg string) (Violation, bool) {
	m := violationRE.FindStringSubmatch(strings.TrimSpace(msg))
	if m == nil {
		return Violation{}, false
	}
	policy := m[1]
	if m[2] != "" {
		policy += ":" + m[2]
	}
	return Violation{Policy: policy, Level: m[1], Details: m[3]}, true
}

// Mentions reports whether the violation names keyword.
func (v Violation) Mentions(keyword string) bool { return strings.Contains(v.Details, keyword) }

// JudgeRejection decides whether an admission answer is a Pod Security
// rejection of variant keyword at a level that forbids it. It returns the
// observed word and whether that is what was expected.
func JudgeRejection(status int, msg, keyword string) (observed string, ok bool) {
	if status < 300 {
		return "admitted", false
	}
	v, isPSA := ParseViolation(msg)
	switch {
	case !isPSA:
		return fmt.Sprintf("rejected (%d), not by PodSecurity", status), false
	case !v.Mentions(keyword):
		return fmt.Sprintf("rejected by PodSecurity %q, not for %s", v.Policy, keyword), false
	}
	return fmt.Sprintf("rejected by PodSecurity %q", v.Policy), true
}

// PodName is the name of a variant's dry-run pod.
func PodName(variant string) string { return "bulkhead-psa-" + variant }

// judgeRejection judges an answer that should be a Pod Security rejection
// for keyword: an admission is a leak; a refusal by Pod Security for
// another reason, or by anything else (a quota, RBAC, the runner's refused
// impersonation), or no answer, proves nothing either way.
func judgeRejection(a tenantapi.Answer, keyword string) tenantapi.Judged {
	if a.Err != nil || a.Admitted() {
		return tenantapi.Inconclusive(a, "no API answer")
	}
	word, ok := JudgeRejection(a.Status, a.Message, keyword)
	if ok {
		return tenantapi.Judged{Observed: word, OK: true}
	}
	return tenantapi.Judged{Observed: word, Inconclusive: "not a Pod Security rejection for " + keyword}
}
