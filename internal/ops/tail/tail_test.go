package tail

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestValidate_RefusesWhatCannotBeFollowed(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) {}, "give --queue or --topic"},
		{func(c *Config) { c.Queue, c.Topic = "q", "t" }, "give --queue or --topic"},
		{func(c *Config) { c.Topic, c.Follow = "t", false }, "--topic needs --follow"},
		{func(c *Config) { c.Queue, c.Format = "q", "xml" }, `--format="xml"`},
		{func(c *Config) { c.Queue, c.Lines = "q", -1 }, "-n must not be negative"},
		{func(c *Config) { c.Queue = "bad name" }, "--queue"},
	} {
		cfg := DefaultConfig()
		cfg.Addrs = []string{"127.0.0.1:1"}
		tc.edit(&cfg)
		err := cfg.validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", cfg, err, tc.want)
		}
	}
}

func TestWrite_JSONCarriesBinaryAsBase64(t *testing.T) {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	write(w, FormatJSON, line{Queue: "q", ID: "7"}, []byte{0xff, 0x00})
	write(w, FormatJSON, line{Topic: "t"}, []byte("héllo"))
	write(w, FormatRaw, line{}, []byte("raw"))
	w.Flush()
	want := `{"queue":"q","id":"7","data":"/wA=","encoding":"base64"}` + "\n" + `{"topic":"t","data":"héllo"}` + "\n" + "raw\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
