package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// The decoy mode stands in for a cloud instance metadata service on clusters
// bulkhead created, where none exists: it answers the AWS (IMDSv1 and v2),
// GCP, Azure, Alibaba, OpenStack, Oracle and DigitalOcean metadata paths
// with fake data that is obviously marked as bulkhead's, including fake
// credentials shaped like the real ones (so the probe's credential detector
// has something to recognise). Every answer carries wire.DecoyHeader with
// the decoy's marker, so a check can tell the decoy from a proxy or a real
// service. It runs outside the cluster's nodes (see internal/target/decoy).

const (
	// decoyRole is the fake AWS instance role.
	decoyRole = "bulkhead-decoy-role"
	// decoyAccessKey has the shape of an AWS temporary access key ID.
	decoyAccessKey = "ASIABULKHEADDECOY000"
	// decoyNotice is in every body: nobody should mistake this for real data.
	decoyNotice = "FAKE DATA FROM THE BULKHEAD METADATA DECOY - NOT A CREDENTIAL"
)

var markerPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func runDecoy(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("decoy", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", ":80", "HTTP listen address")
	marker := fs.String("marker", "", "marker sent in the "+wire.DecoyHeader+" header of every answer (the run ID)")
	logRequests := fs.Bool("log-requests", true, "log every request (method, path, source)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 || !markerPattern.MatchString(*marker) {
		fmt.Fprintln(e.stderr, "probe decoy: want --marker of 1-64 letters, digits, '.', '_' or '-', and no arguments")
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("cannot listen", "addr", *addr, "err", err)
		return exitFail
	}
	srv := newDecoyServer(*marker, log, *logRequests)
	log.Info("metadata decoy serving", "addr", l.Addr().String(), "marker", *marker)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		srv.Shutdown(sctx)
		cancel()
		log.Info("stopped")
		return exitOK
	case err := <-errc:
		log.Error("server failed", "err", err)
		return exitFail
	}
}

func newDecoyServer(marker string, log *slog.Logger, logRequests bool) *http.Server {
	d := &decoy{marker: marker, token: "BULKHEAD-DECOY-IMDSV2-TOKEN-" + randomHex(8)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.DecoyHeader, marker)
		status := d.serve(w, r)
		if logRequests {
			log.Info("request", "method", r.Method, "path", r.URL.RequestURI(), "from", r.RemoteAddr, "status", status)
		}
	})
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	s.SetKeepAlivesEnabled(false)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type decoy struct {
	marker string
	// token is the IMDSv2 session token this decoy hands out.
	token string
}

// serve answers one request and returns the status it sent.
func (d *decoy) serve(w http.ResponseWriter, r *http.Request) int {
	p := r.URL.Path
	switch {
	case p == "/healthz":
		return d.text(w, http.StatusOK, "ok\n")
	case p == "/latest/api/token":
		return d.awsToken(w, r)
	case strings.HasPrefix(p, "/latest/meta-data"):
		return d.aws(w, r)
	case strings.HasPrefix(p, "/computeMetadata/v1"):
		return d.gcp(w, r)
	case strings.HasPrefix(p, "/metadata/instance"), strings.HasPrefix(p, "/metadata/identity"):
		return d.azure(w, r)
	case strings.HasPrefix(p, "/openstack/latest/meta_data.json"):
		return d.json(w, http.StatusOK, map[string]any{"uuid": "bulkhead-decoy", "name": "bulkhead-decoy", "meta": map[string]string{"notice": decoyNotice, "decoy": d.marker}})
	case strings.HasPrefix(p, "/opc/v2/instance"):
		if r.Header.Get("Authorization") != "Bearer Oracle" {
			return d.text(w, http.StatusUnauthorized, "missing Authorization: Bearer Oracle\n")
		}
		return d.json(w, http.StatusOK, map[string]any{"id": "ocid1.instance.bulkhead-decoy", "displayName": "bulkhead-decoy", "notice": decoyNotice, "decoy": d.marker})
	case strings.HasPrefix(p, "/metadata/v1"):
		return d.text(w, http.StatusOK, "id\nhostname\nregion\nbulkhead-decoy\n")
	}
	return d.text(w, http.StatusNotFound, "not found (bulkhead metadata decoy)\n")
}

// awsToken emulates IMDSv2's PUT /latest/api/token.
func (d *decoy) awsToken(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPut {
		return d.text(w, http.StatusMethodNotAllowed, "")
	}
	if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
		return d.text(w, http.StatusBadRequest, "")
	}
	return d.text(w, http.StatusOK, d.token)
}

// aws emulates IMDS (and Alibaba's, which uses the same paths). A request
// with a token must carry the one handed out; one without is IMDSv1, which
// this decoy (like an instance with IMDSv1 enabled) answers.
func (d *decoy) aws(w http.ResponseWriter, r *http.Request) int {
	if t := r.Header.Get("X-aws-ec2-metadata-token"); t != "" && t != d.token {
		return d.text(w, http.StatusUnauthorized, "")
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/latest/meta-data":
		return d.text(w, http.StatusOK, "ami-id\nhostname\niam/\ninstance-id\nbulkhead-decoy\n")
	case "/latest/meta-data/iam/security-credentials":
		return d.text(w, http.StatusOK, decoyRole+"\n")
	case "/latest/meta-data/iam/security-credentials/" + decoyRole:
		return d.json(w, http.StatusOK, map[string]any{
			"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"AccessKeyId": decoyAccessKey, "SecretAccessKey": "BULKHEAD-DECOY-SECRET-" + d.marker,
			"Token": "BULKHEAD-DECOY-SESSION-TOKEN-" + d.marker, "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"Notice": decoyNotice,
		})
	case "/latest/meta-data/instance-id":
		return d.text(w, http.StatusOK, "i-bulkheaddecoy\n")
	}
	return d.text(w, http.StatusNotFound, "")
}

// gcp emulates the GCE metadata server, which refuses requests without
// Metadata-Flavor: Google.
func (d *decoy) gcp(w http.ResponseWriter, r *http.Request) int {
	w.Header().Set("Metadata-Flavor", "Google")
	if r.Header.Get("Metadata-Flavor") != "Google" {
		return d.text(w, http.StatusForbidden, "Missing Metadata-Flavor:Google header.\n")
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/computeMetadata/v1":
		return d.text(w, http.StatusOK, "instance/\nproject/\n")
	case "/computeMetadata/v1/instance/service-accounts/default/token":
		return d.json(w, http.StatusOK, map[string]any{"access_token": "ya29.BULKHEAD-DECOY-" + d.marker, "expires_in": 3599, "token_type": "Bearer", "notice": decoyNotice})
	}
	return d.text(w, http.StatusNotFound, "")
}

// azure emulates the Azure IMDS, which refuses requests without Metadata: true.
func (d *decoy) azure(w http.ResponseWriter, r *http.Request) int {
	if r.Header.Get("Metadata") != "true" {
		return d.json(w, http.StatusBadRequest, map[string]string{"error": "Bad request. Required metadata header not specified"})
	}
	if strings.HasPrefix(r.URL.Path, "/metadata/identity/oauth2/token") {
		return d.json(w, http.StatusOK, map[string]any{"access_token": "BULKHEAD-DECOY-AZURE-TOKEN-" + d.marker, "token_type": "Bearer",
			"resource": r.URL.Query().Get("resource"), "notice": decoyNotice})
	}
	return d.json(w, http.StatusOK, map[string]any{"compute": map[string]string{"name": "bulkhead-decoy", "vmId": "bulkhead-decoy", "notice": decoyNotice}})
}

func (d *decoy) text(w http.ResponseWriter, status int, body string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	return status
}

func (d *decoy) json(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return d.text(w, http.StatusInternalServerError, "")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return status
}
