package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// defaultURL is where the CLI looks for a running daemon when neither
// --url nor AGENTHOST_URL says otherwise.
const defaultURL = "http://localhost:3000"

// apiClient talks to a running daemon's HTTP API.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

// errNoDaemon: nothing answers at the daemon's address.
var errNoDaemon = errors.New("no agenthost daemon answers")

// apiError is an error the daemon answered with.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message + " (" + e.Code + ")" }

// newClient reads AGENTHOST_URL and the API key (AGENTHOST_API_KEY or
// ELIZA_SERVER_AUTH_TOKEN) from the environment and .env; --url wins.
func newClient(cmd *cobra.Command) (*apiClient, error) {
	env, err := loadEnv()
	if err != nil {
		return nil, err
	}
	base := env["AGENTHOST_URL"]
	if f := cmd.Flags().Lookup("url"); f != nil && f.Changed {
		base = f.Value.String()
	}
	if base == "" {
		base = defaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("AGENTHOST_URL=%q is not an http(s) URL such as %s", base, defaultURL)
	}
	key := env["AGENTHOST_API_KEY"]
	if key == "" {
		key = env["ELIZA_SERVER_AUTH_TOKEN"]
	}
	return &apiClient{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{Timeout: 10 * time.Minute}}, nil
}

// rawJSON is a request body sent byte for byte as it is: JSON the user
// wrote, so that the daemon's line and column in an error are the user's.
// (encoding/json would compact it.)
type rawJSON []byte

// do sends a request and decodes the envelope's data into out.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if raw, ok := body.(rawJSON); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-API-KEY", c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) {
			return fmt.Errorf("%w at %s (start one with `agenthost start`, or set AGENTHOST_URL): %w", errNoDaemon, c.base, err)
		}
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the daemon's answer: %w", err)
	}
	var env struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: the answer (HTTP %d) is not agenthost's JSON; is AGENTHOST_URL=%s an agenthost daemon?", method, path, res.StatusCode, c.base)
	}
	if !env.Success || env.Error != nil {
		e := &apiError{Status: res.StatusCode, Code: "HTTP_" + fmt.Sprint(res.StatusCode), Message: http.StatusText(res.StatusCode)}
		if env.Error != nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		}
		if res.StatusCode == http.StatusUnauthorized {
			e.Message += " (set AGENTHOST_API_KEY)"
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}
