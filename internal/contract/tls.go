package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// The host and a plugin it starts speak mutual TLS. go-plugin's AutoMTLS
// makes the two throwaway certificates with P-521 keys, and the first
// P-521 key, signature or check in a process builds a table of half a
// megabyte that the process then keeps: in the daemon and in every plugin.
// The host therefore makes P-256 certificates itself, as go-plugin would
// otherwise (self-signed, for localhost): its own, which it passes in
// PLUGIN_CLIENT_CERT as AutoMTLS does, and one for the plugin, whose PEM
// certificate and key it writes on a pipe the plugin inherits, numbered
// in HostTLSFDEnv. A plugin that serves with that one prints no
// certificate in its handshake; a plugin that ignores it makes its own and
// prints it in the sixth field, as with AutoMTLS, and the host trusts that
// one instead.
const (
	// ClientCertEnv is go-plugin's variable for the host's certificate.
	ClientCertEnv = "PLUGIN_CLIENT_CERT"
	// HostTLSFDEnv names the file descriptor from which a plugin reads
	// the certificate and key the host made for it.
	HostTLSFDEnv = "AGENTHOST_PLUGIN_TLS_FD"
	// maxHostTLS bounds what a plugin reads from that descriptor.
	maxHostTLS = 64 << 10
)

// NewCertificate makes a self-signed P-256 certificate for localhost that
// serves as a TLS client and as a server, and returns it with its PEM
// certificate and key.
func NewCertificate() (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("make a TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("make a TLS certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"agenthost"}},
		DNSNames:     []string{"localhost"},
		// A plugin process may outlive a laptop's sleep or a clock's jump.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("make a TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("make a TLS key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("make a TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, keyPEM, nil
}

// PluginTLS is the TLS a plugin serves the host with when the host made
// its certificate (HostTLSFDEnv): that certificate, and only the host's
// (ClientCertEnv) as a client. It is nil, with no error, when the host
// made none. The descriptor is read once and closed.
func PluginTLS() (*tls.Config, error) {
	v := os.Getenv(HostTLSFDEnv)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(HostTLSFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not a file descriptor of the process", HostTLSFDEnv, v)
	}
	// A descriptor that is not open fails the read.
	f := os.NewFile(uintptr(fd), "host TLS")
	b, err := io.ReadAll(io.LimitReader(f, maxHostTLS))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read the host's TLS certificate (%s=%d): %w", HostTLSFDEnv, fd, err)
	}
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, fmt.Errorf("the host's TLS certificate (%s=%d): %w", HostTLSFDEnv, fd, err)
	}
	client := x509.NewCertPool()
	if !client.AppendCertsFromPEM([]byte(os.Getenv(ClientCertEnv))) {
		return nil, errors.New(ClientCertEnv + " holds no PEM certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: client, MinVersion: tls.VersionTLS12}, nil
}

// HostTLS sets up the mutual TLS between the host and a process it starts
// with cmd, in place of go-plugin's AutoMTLS (see HostTLSFDEnv for why):
// the host's certificate in the process's environment, the one made for
// the process on a pipe it inherits, and the go-plugin client trusting
// only that one, or the certificate the process names in its handshake.
// It returns the made certificate and a func that closes the host's end of
// the pipe, to call once the process has started.
func HostTLS(cfg *goplugin.ClientConfig, cmd *exec.Cmd) (*x509.Certificate, func(), error) {
	client, clientPEM, _, err := NewCertificate()
	if err != nil {
		return nil, nil, err
	}
	server, serverPEM, serverKey, err := NewCertificate()
	if err != nil {
		return nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("hand the plugin its TLS certificate: %w", err)
	}
	// Far below a pipe's buffer: written whole before the process starts.
	_, err = w.Write(append(serverPEM, serverKey...))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("hand the plugin its TLS certificate: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	fd := 2 + len(cmd.ExtraFiles)
	cmd.Env = append(cmd.Env, ClientCertEnv+"="+string(clientPEM), HostTLSFDEnv+"="+strconv.Itoa(fd))
	roots := x509.NewCertPool()
	roots.AddCert(server.Leaf)
	cfg.AutoMTLS = false
	// go-plugin replaces RootCAs with the certificate a process names in
	// its handshake, if it names one.
	cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	return server.Leaf, func() { r.Close() }, nil
}
