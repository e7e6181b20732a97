// Package endpoints is the catalogue of cloud instance metadata endpoints
// bulkhead tries from tenant pods: the one place that says which addresses,
// paths and headers the metadata checks use, which addresses the reference
// tenants' internet-egress policy excepts, and which addresses the decoy
// stands in for. It is data with no dependencies but the probe's wire
// contract, so fixtures can read it too.
package endpoints

import (
	"net/netip"
	"slices"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Well-known metadata addresses.
const (
	// LinkLocal serves AWS, GCP, Azure, OpenStack, Oracle and DigitalOcean.
	LinkLocal = "169.254.169.254"
	// AWSIPv6 is IMDS on Nitro instances with the IPv6 endpoint enabled.
	AWSIPv6 = "fd00:ec2::254"
	// Alibaba is Alibaba Cloud's metadata service.
	Alibaba = "100.100.100.200"
	// GCPName is GCP's metadata server by name (it resolves to LinkLocal on GCE).
	GCPName = "metadata.google.internal"
)

// Endpoint is one way of asking a metadata service for data.
type Endpoint struct {
	// ID is stable: evidence names endpoints by it.
	ID       string
	Provider string
	// Title says what is tried, e.g. "AWS IMDSv2 (token PUT, then GET)".
	Title string
	// Method names the kind of attempt in evidence: "http GET" or
	// "imdsv2 PUT+GET".
	Method string
	// Credentials is true when a successful answer holds cloud credentials
	// (directly or after the follow-up request).
	Credentials bool
	// Wire is what the probe is sent.
	Wire wire.MetadataEndpoint
}

// Header names and values the services require.
const (
	awsTokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"
	awsTokenHeader    = "X-aws-ec2-metadata-token"
)

func get(host, path string, headers map[string]string) wire.MetadataEndpoint {
	return wire.MetadataEndpoint{Host: host, Port: 80, Request: wire.HTTPStep{Method: "GET", Path: path, Headers: headers}}
}

// imdsv2 is AWS's session-oriented protocol: PUT a token request, then GET
// with the token.
func imdsv2(host, path string) wire.MetadataEndpoint {
	ep := get(host, path, nil)
	ep.Token = &wire.HTTPStep{Method: "PUT", Path: "/latest/api/token", Headers: map[string]string{awsTokenTTLHeader: "60"}}
	ep.TokenHeader = awsTokenHeader
	return ep
}

func follow(ep wire.MetadataEndpoint) wire.MetadataEndpoint {
	ep.FollowFirst = true
	return ep
}

var (
	google = map[string]string{"Metadata-Flavor": "Google"}
	azure  = map[string]string{"Metadata": "true"}
	oracle = map[string]string{"Authorization": "Bearer Oracle"}
)

const (
	methodGET    = "http GET"
	methodIMDSv2 = "imdsv2 PUT+GET"
	awsCreds     = "/latest/meta-data/iam/security-credentials/"
)

var catalogue = []Endpoint{
	{ID: "aws-imdsv1", Provider: "aws", Title: "AWS IMDSv1", Method: methodGET,
		Wire: get(LinkLocal, "/latest/meta-data/", nil)},
	{ID: "aws-imdsv1-credentials", Provider: "aws", Title: "AWS IMDSv1 instance role credentials", Method: methodGET, Credentials: true,
		Wire: follow(get(LinkLocal, awsCreds, nil))},
	{ID: "aws-imdsv2", Provider: "aws", Title: "AWS IMDSv2 (token PUT, then GET)", Method: methodIMDSv2,
		Wire: imdsv2(LinkLocal, "/latest/meta-data/")},
	{ID: "aws-imdsv2-credentials", Provider: "aws", Title: "AWS IMDSv2 instance role credentials", Method: methodIMDSv2, Credentials: true,
		Wire: follow(imdsv2(LinkLocal, awsCreds))},
	{ID: "aws-imdsv1-ipv6", Provider: "aws", Title: "AWS IMDSv1 over IPv6", Method: methodGET,
		Wire: get(AWSIPv6, "/latest/meta-data/", nil)},
	{ID: "aws-imdsv2-ipv6", Provider: "aws", Title: "AWS IMDSv2 over IPv6", Method: methodIMDSv2,
		Wire: imdsv2(AWSIPv6, "/latest/meta-data/")},
	{ID: "gcp-name", Provider: "gcp", Title: "GCP metadata server by name", Method: methodGET,
		Wire: get(GCPName, "/computeMetadata/v1/", google)},
	{ID: "gcp", Provider: "gcp", Title: "GCP metadata server", Method: methodGET,
		Wire: get(LinkLocal, "/computeMetadata/v1/", google)},
	{ID: "gcp-token", Provider: "gcp", Title: "GCP default service account token", Method: methodGET, Credentials: true,
		Wire: get(LinkLocal, "/computeMetadata/v1/instance/service-accounts/default/token", google)},
	{ID: "azure", Provider: "azure", Title: "Azure IMDS instance metadata", Method: methodGET,
		Wire: get(LinkLocal, "/metadata/instance?api-version=2021-02-01", azure)},
	{ID: "azure-token", Provider: "azure", Title: "Azure managed identity token", Method: methodGET, Credentials: true,
		Wire: get(LinkLocal, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F", azure)},
	{ID: "alibaba", Provider: "alibaba", Title: "Alibaba Cloud metadata", Method: methodGET,
		Wire: get(Alibaba, "/latest/meta-data/", nil)},
	{ID: "openstack", Provider: "openstack", Title: "OpenStack metadata", Method: methodGET,
		Wire: get(LinkLocal, "/openstack/latest/meta_data.json", nil)},
	{ID: "oracle", Provider: "oracle", Title: "Oracle Cloud IMDSv2", Method: methodGET,
		Wire: get(LinkLocal, "/opc/v2/instance/", oracle)},
	{ID: "digitalocean", Provider: "digitalocean", Title: "DigitalOcean metadata", Method: methodGET,
		Wire: get(LinkLocal, "/metadata/v1/", nil)},
}

// All returns the catalogue, each endpoint's Wire.ID set to its ID. The
// caller may change the copy.
func All() []Endpoint {
	out := make([]Endpoint, len(catalogue))
	for i, e := range catalogue {
		e.Wire.ID = e.ID
		e.Wire.Request.Headers = cloneMap(e.Wire.Request.Headers)
		if e.Wire.Token != nil {
			t := *e.Wire.Token
			t.Headers = cloneMap(t.Headers)
			e.Wire.Token = &t
		}
		out[i] = e
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Addresses returns every IP address the catalogue dials by address, in
// catalogue order, without duplicates (names like metadata.google.internal
// are not included: they resolve to one of these on their cloud).
func Addresses() []netip.Addr {
	var out []netip.Addr
	for _, e := range catalogue {
		a, err := netip.ParseAddr(e.Wire.Host)
		if err != nil || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// CIDRs returns Addresses as host prefixes ("169.254.169.254/32",
// "fd00:ec2::254/128"): what a policy allowing general egress must except.
func CIDRs() []string {
	var out []string
	for _, a := range Addresses() {
		out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
	}
	return out
}
