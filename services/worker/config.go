package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"
)

// Config is the worker role's configuration. Start from Defaults(), decode
// YAML over it, then call Validate.
type Config struct {
	// ID names this worker in heartbeats, results and its transactional id.
	// It must be unique among running workers. Default: hostname-pid-random.
	ID string `yaml:"id"`
	// Concurrency is the most attempts running at once; the worker takes a
	// job only when one of these slots is free. Default 8.
	Concurrency int `yaml:"concurrency"`
	// HeartbeatInterval is how often the worker says it is alive. Default 3s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// ShutdownGrace is how long running attempts may go on once the worker
	// is asked to stop; those still running then are cancelled and handed
	// back: no result is sent, and the executor runs them again as new
	// attempts on other workers. Default 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Defaults returns a Config with every default set, including a fresh ID.
func Defaults() Config {
	return Config{
		ID:                defaultID(),
		Concurrency:       8,
		HeartbeatInterval: 3 * time.Second,
		ShutdownGrace:     30 * time.Second,
	}
}

// defaultID is hostname-pid-random: readable in logs, unique per process.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = notIDChar.ReplaceAllString(host, "_")
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// The ID ends up in a transactional id and in record keys: keep it to the
// characters of Kafka names.
var (
	idChars   = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	notIDChar = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)
)

const maxIDLen = 200

// Validate returns every problem in c at once, each naming the YAML field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.ID == "":
		bad("id", "must not be empty")
	case len(c.ID) > maxIDLen:
		bad("id", "is %d characters long, at most %d allowed", len(c.ID), maxIDLen)
	case !idChars.MatchString(c.ID):
		bad("id", "%q may only contain letters, digits, '.', '_' and '-'", c.ID)
	}
	if c.Concurrency < 1 {
		bad("concurrency", "must be at least 1, got %d", c.Concurrency)
	}
	if c.HeartbeatInterval < 10*time.Millisecond {
		bad("heartbeat_interval", "must be at least 10ms, got %s", c.HeartbeatInterval)
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	return errors.Join(errs...)
}
