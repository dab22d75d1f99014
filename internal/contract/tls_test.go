package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hostTLS hands this process a certificate as the host hands a plugin
// one: on a descriptor numbered in HostTLSFDEnv, with the host's own in
// PLUGIN_CLIENT_CERT.
func hostTLS(t *testing.T, clientPEM, onFD []byte) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(onFD); err != nil {
		t.Fatal(err)
	}
	w.Close()
	fd, err := syscall.Dup(int(r.Fd()))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ClientCertEnv, string(clientPEM))
	t.Setenv(HostTLSFDEnv, strconv.Itoa(fd))
}

// handshake runs a TLS handshake between client and server over a pipe
// and returns the server's error: TLS 1.3 tells a client of a refused
// certificate only on its first read, the server judges it at once.
func handshake(client, server *tls.Config) error {
	a, b := net.Pipe()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(b, server).Handshake(); b.Close() }()
	_ = tls.Client(a, client).Handshake()
	a.Close()
	return <-done
}

// A plugin serves with the P-256 certificate the host made for it, and
// takes only the host's certificate from a client.
func TestPluginTLSServesTheHostsCertificate(t *testing.T) {
	host, hostPEM, _, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	plugin, pluginPEM, pluginKey, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := plugin.Leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("the certificate's key is %T, want P-256", plugin.Leaf.PublicKey)
	}
	hostTLS(t, hostPEM, append(pluginPEM, pluginKey...))
	server, err := PluginTLS()
	if err != nil || server == nil {
		t.Fatalf("PluginTLS: %v, %v", server, err)
	}
	if v, ok := os.LookupEnv(HostTLSFDEnv); ok {
		t.Errorf("%s=%s is still set: the plugin's children would read a descriptor that is not theirs", HostTLSFDEnv, v)
	}
	roots := x509.NewCertPool()
	roots.AddCert(plugin.Leaf)
	client := &tls.Config{Certificates: []tls.Certificate{host}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if err := handshake(client, server); err != nil {
		t.Fatalf("the host's handshake with the plugin: %v", err)
	}
	stranger, _, _, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Config{
		"no client certificate":                {RootCAs: roots, ServerName: "localhost"},
		"a certificate that is not the host's": {Certificates: []tls.Certificate{stranger}, RootCAs: roots, ServerName: "localhost"},
	} {
		if err := handshake(c, server); err == nil {
			t.Errorf("the plugin accepted a client with %s", name)
		}
	}
}

// Without a certificate from the host, a plugin makes its own (go-plugin's
// AutoMTLS); a broken hand-over is an error that names the variable.
func TestPluginTLSRefusesABrokenHandOver(t *testing.T) {
	t.Setenv(HostTLSFDEnv, "")
	if c, err := PluginTLS(); c != nil || err != nil {
		t.Fatalf("without %s: %v, %v; want nothing", HostTLSFDEnv, c, err)
	}
	_, hostPEM, _, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	_, pluginPEM, pluginKey, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		fd        string
		clientPEM []byte
		onFD      []byte
	}{
		"not a number":        {fd: "three"},
		"stdin":               {fd: "0"},
		"garbage on the fd":   {clientPEM: hostPEM, onFD: []byte("not PEM at all")},
		"a certificate only":  {clientPEM: hostPEM, onFD: pluginPEM},
		"no host certificate": {clientPEM: nil, onFD: append(pluginPEM, pluginKey...)},
	} {
		if c.fd != "" {
			t.Setenv(HostTLSFDEnv, c.fd)
		} else {
			hostTLS(t, c.clientPEM, c.onFD)
		}
		cfg, err := PluginTLS()
		if err == nil || cfg != nil {
			t.Errorf("%s: %v, %v; want an error", name, cfg, err)
			continue
		}
		if !strings.Contains(err.Error(), HostTLSFDEnv) && !strings.Contains(err.Error(), ClientCertEnv) {
			t.Errorf("%s: %q names neither %s nor %s", name, err, HostTLSFDEnv, ClientCertEnv)
		}
	}
}
