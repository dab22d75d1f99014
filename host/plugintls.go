package host

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/agenthost/agenthost/internal/contract"
	goplugin "github.com/hashicorp/go-plugin"
)

// pluginTLS sets up the mutual TLS between the host and a process it
// starts with cmd, in place of go-plugin's AutoMTLS (see the contract's
// HostTLSFDEnv for why): the host's certificate in the process's
// environment, the one made for the process on a pipe it inherits, and the
// go-plugin client trusting only that one, or the certificate the process
// names in its handshake. It returns the made certificate and a func that
// closes the host's end of the pipe, to call once the process has
// started.
func pluginTLS(cfg *goplugin.ClientConfig, cmd *exec.Cmd) (*x509.Certificate, func(), error) {
	client, clientPEM, _, err := contract.NewCertificate()
	if err != nil {
		return nil, nil, err
	}
	server, serverPEM, serverKey, err := contract.NewCertificate()
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
	cmd.Env = append(cmd.Env, contract.ClientCertEnv+"="+string(clientPEM), contract.HostTLSFDEnv+"="+strconv.Itoa(fd))
	roots := x509.NewCertPool()
	roots.AddCert(server.Leaf)
	cfg.AutoMTLS = false
	// go-plugin replaces RootCAs with the certificate a process names in
	// its handshake, if it names one.
	cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	return server.Leaf, func() { r.Close() }, nil
}
