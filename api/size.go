package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Sizes in flags and messages are bytes, written with binary units: 512,
// 64KiB, 1.5GiB.

var byteUnits = []struct {
	name string
	n    int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// FormatBytes writes n bytes for a person: "512 B", "64.0 KiB", "1.5 GiB".
func FormatBytes(n int64) string {
	for _, u := range byteUnits {
		if n >= u.n || -n >= u.n {
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.n), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// ParseBytes parses a size: a whole number of bytes, or a number with a
// binary unit (KiB, MiB, GiB, TiB, any case, a space allowed before it).
// Negative sizes are refused.
func ParseBytes(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if len(num) > len(u.name) && strings.EqualFold(num[len(num)-len(u.name):], u.name) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.name)]), u.n
			break
		}
	}
	bad := fmt.Errorf("invalid size %s: want bytes, or a number with KiB, MiB, GiB or TiB", Quote(s))
	if mult == 1 {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}
