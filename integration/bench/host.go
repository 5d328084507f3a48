package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ThisMachine describes the host from /proc (Linux); what cannot be read
// stays empty.
func ThisMachine() Machine {
	m := Machine{OS: runtime.GOOS + "/" + runtime.GOARCH, Cores: runtime.NumCPU()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", kernel " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.MemoryBytes = kBField("/proc/meminfo", "MemTotal")
	return m
}

// kBField reads a "Field:   123 kB" line of a /proc file, in bytes; 0 when
// unknown.
func kBField(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// KiteVersions are this binary's version, commit and Go version.
func KiteVersions(version string) map[string]string {
	v := map[string]string{"kite": version, "go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v["commit"] = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					v["commit"] += "-dirty"
				}
			}
		}
	}
	return v
}

// TopicSizes returns the bytes on the brokers' log dirs of each topic whose
// name starts with prefix (the prefix cut off), summed over partitions,
// replicas and log dirs.
func TopicSizes(ctx context.Context, adm *kadm.Client, prefix string) (map[string]int64, error) {
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("describing the brokers' log dirs: %w", err)
	}
	sizes := map[string]int64{}
	for _, d := range dirs.Sorted() {
		if d.Err != nil {
			return nil, fmt.Errorf("describing log dir %s of broker %d: %w", d.Dir, d.Broker, d.Err)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if name, ok := strings.CutPrefix(p.Topic, prefix); ok {
				sizes[name] += p.Size
			}
		})
	}
	return sizes, nil
}
