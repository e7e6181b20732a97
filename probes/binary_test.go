package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// buildProbe builds the binary the image ships: CGO_ENABLED=0, version
// stamped via -ldflags.
func buildProbe(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w -X main.version=test-1.2.3", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the probe ships as a Linux binary")
	}
	bin := buildProbe(t)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("binary has an ELF interpreter: it is dynamically linked")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("binary needs shared libraries %v", libs)
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range info.Settings {
			if s.Key == "CGO_ENABLED" && s.Value != "0" {
				t.Errorf("built with CGO_ENABLED=%s", s.Value)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("version=test-1.2.3 wire=%d ", wire.Version); !strings.Contains(string(out), want) {
			t.Errorf("version output %q, want it to contain %q", out, want)
		}
	})

	t.Run("usage", func(t *testing.T) {
		err := exec.Command(bin).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage {
			t.Errorf("no arguments: %v, want exit %d", err, exitUsage)
		}
	})

	t.Run("serve, ready, connect, SIGTERM", func(t *testing.T) {
		serve := exec.Command(bin, "serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--sctp", "127.0.0.1:0")
		serve.Env = []string{"POD_NAME=bin-probe", "POD_NAMESPACE=ns-b", "NODE_NAME=node-b", "POD_IP=127.0.0.1"}
		stderr, err := serve.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := serve.Start(); err != nil {
			t.Fatal(err)
		}
		defer serve.Process.Kill()

		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var tcpAddr, udpAddr string
		for tcpAddr == "" {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("serve exited before serving")
				}
				t.Log(l)
				if strings.Contains(l, "msg=serving") {
					tcpAddr, udpAddr = logValue(l, "tcp"), logValue(l, "udp")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not start")
			}
		}

		if out, err := exec.Command(bin, "ready", "--addr", tcpAddr).CombinedOutput(); err != nil {
			t.Errorf("ready: %v %s", err, out)
		}

		req := fmt.Sprintf(`{"timeoutMs":1000,"targets":[{"id":"t","protocol":"tcp","host":"%s","port":%s},{"id":"u","protocol":"udp","host":"127.0.0.1","port":%s}]}`,
			"127.0.0.1", tcpAddr[strings.LastIndex(tcpAddr, ":")+1:], udpAddr[strings.LastIndex(udpAddr, ":")+1:])
		connect := exec.Command(bin, "connect")
		connect.Stdin = strings.NewReader(req)
		out, err := connect.Output()
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		var resp wire.ConnectResponse
		if err := json.NewDecoder(bytes.NewReader(out)).Decode(&resp); err != nil {
			t.Fatalf("connect output: %v\n%s", err, out)
		}
		for _, r := range resp.Results {
			if r.Outcome != wire.Reachable || r.Peer == nil || r.Peer.Pod != "bin-probe" {
				t.Errorf("%s: %+v", r.ID, r)
			}
		}

		start := time.Now()
		if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for range lines { // drain until stderr closes
		}
		done := make(chan error, 1)
		go func() { done <- serve.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exited with %v after SIGTERM, want 0", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("serve took %v to stop; pods get 1s", d)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("serve ignored SIGTERM")
		}
	})
}
