package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Message is one generated message.
type Message struct {
	Data []byte
	// At is when the message is due, from the start of the stream, for a
	// timed source (Timed true): Run sends it at At/speed.
	At    time.Duration
	Timed bool
}

// Source yields messages in order; ok is false at the end of a finite
// source. A Source is used by one goroutine.
type Source interface {
	Next() (m Message, ok bool)
}

// Count yields start, start+1, … as decimal text, forever.
type Count struct{ next int64 }

// NewCount returns the counting source from start.
func NewCount(start int64) *Count { return &Count{next: start} }

// Next implements Source.
func (c *Count) Next() (Message, bool) {
	m := Message{Data: strconv.AppendInt(nil, c.next, 10)}
	c.next++
	return m, true
}

// Distributions of Random.
var Distributions = []string{"uniform", "normal", "exponential", "lognormal", "poisson", "zipf", "ints"}

// RandomConfig is a random source's distribution and parameters.
type RandomConfig struct {
	// Dist is one of Distributions.
	Dist string
	// Mean and StdDev: normal; for lognormal the mean and standard
	// deviation of the underlying normal (log x), as numpy's lognormal.
	Mean, StdDev float64
	// Min and Max: uniform [Min, Max); ints: every integer in [Min, Max].
	Min, Max float64
	// Lambda: exponential rate (mean 1/Lambda); poisson mean.
	Lambda float64
	// S, V and IMax: zipf, P(k) ∝ (V+k)^(−S) for k in [0, IMax] (math/rand's
	// Zipf: S > 1, V >= 1).
	S, V float64
	IMax uint64
	// Seed makes the stream (and secret parameters) reproducible.
	Seed uint64
	// Secret replaces the parameters by random ones drawn from Seed (see
	// Random.Secret).
	Secret bool
}

// RandomDefaults returns the default parameters of dist: uniform [0, 1)
// (the tutorial's first exercise), standard normal, exponential and poisson
// with lambda 1, lognormal(0, 1), zipf s=2 v=1 imax=100, ints 0 to 9.
func RandomDefaults(dist string) (RandomConfig, error) {
	c := RandomConfig{Dist: dist, Mean: 0, StdDev: 1, Min: 0, Max: 1, Lambda: 1, S: 2, V: 1, IMax: 100}
	switch dist {
	case "ints":
		c.Max = 9
	case "uniform", "normal", "exponential", "lognormal", "poisson", "zipf":
	default:
		return c, fmt.Errorf("gen: unknown distribution %q (want one of %s)", dist, strings.Join(Distributions, ", "))
	}
	return c, nil
}

// Random yields numbers drawn from a distribution: floats as the shortest
// decimal that reads back exactly, integers (poisson, zipf, ints) as
// integers.
type Random struct {
	cfg  RandomConfig
	r    *rand.Rand
	zipf *rand.Zipf
	pois distuv.Poisson
}

// NewRandom checks cfg and returns the source. With cfg.Secret the
// parameters are first replaced by random ones drawn from a generator
// seeded with cfg.Seed (independent of the stream's own generator).
func NewRandom(cfg RandomConfig) (*Random, error) {
	if cfg.Secret {
		cfg = secretParams(cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	src := rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)
	g := &Random{cfg: cfg, r: rand.New(src)}
	switch cfg.Dist {
	case "zipf":
		g.zipf = rand.NewZipf(g.r, cfg.S, cfg.V, cfg.IMax)
	case "poisson":
		g.pois = distuv.Poisson{Lambda: cfg.Lambda, Src: src}
	}
	return g, nil
}

func (c RandomConfig) validate() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("gen: "+c.Dist+": "+format, a...) }
	finite := func(xs ...float64) bool {
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
		return true
	}
	switch c.Dist {
	case "uniform":
		if !finite(c.Min, c.Max) || !(c.Min < c.Max) {
			return bad("want finite --min < --max, got %v and %v", c.Min, c.Max)
		}
	case "ints":
		if !finite(c.Min, c.Max) || c.Min != math.Trunc(c.Min) || c.Max != math.Trunc(c.Max) || c.Min > c.Max ||
			math.Abs(c.Min) > 1<<53 || math.Abs(c.Max) > 1<<53 {
			return bad("want integers --min <= --max (|x| <= 2^53), got %v and %v", c.Min, c.Max)
		}
	case "normal", "lognormal":
		if !finite(c.Mean, c.StdDev) || c.StdDev < 0 {
			return bad("want a finite --mean and --stddev >= 0, got %v and %v", c.Mean, c.StdDev)
		}
	case "exponential", "poisson":
		if !finite(c.Lambda) || !(c.Lambda > 0) {
			return bad("want --lambda > 0, got %v", c.Lambda)
		}
	case "zipf":
		if !finite(c.S, c.V) || !(c.S > 1) || !(c.V >= 1) {
			return bad("want --s > 1 and --v >= 1, got %v and %v", c.S, c.V)
		}
	default:
		_, err := RandomDefaults(c.Dist)
		return err
	}
	return nil
}

// secretParams draws the parameters of c.Dist from c.Seed.
func secretParams(c RandomConfig) RandomConfig {
	r := rand.New(rand.NewPCG(c.Seed, 0x5ec12e7))
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	round := func(x float64, digits int) float64 {
		p := math.Pow(10, float64(digits))
		return math.Round(x*p) / p
	}
	switch c.Dist {
	case "uniform":
		c.Min = round(u(-100, 100), 2)
		c.Max = c.Min + round(u(1, 100), 2)
	case "ints":
		c.Min = float64(r.IntN(101) - 50)
		c.Max = c.Min + float64(1+r.IntN(100))
	case "normal":
		c.Mean = round(u(-100, 100), 2)
		c.StdDev = round(u(0.5, 25), 2)
	case "lognormal":
		c.Mean = round(u(-1, 3), 2)
		c.StdDev = round(u(0.1, 1), 2)
	case "exponential":
		c.Lambda = round(u(0.05, 5), 3)
	case "poisson":
		c.Lambda = round(u(0.5, 50), 2)
	case "zipf":
		c.S = round(u(1.1, 3), 2)
		c.V = round(u(1, 10), 2)
		c.IMax = 1000
	}
	return c
}

// Config returns the parameters in use (after Secret replaced them).
func (g *Random) Config() RandomConfig { return g.cfg }

// Truth returns the distribution's mean and variance.
func (g *Random) Truth() (mean, variance float64) {
	c := g.cfg
	switch c.Dist {
	case "uniform":
		return (c.Min + c.Max) / 2, (c.Max - c.Min) * (c.Max - c.Min) / 12
	case "ints":
		w := c.Max - c.Min + 1
		return (c.Min + c.Max) / 2, (w*w - 1) / 12
	case "normal":
		return c.Mean, c.StdDev * c.StdDev
	case "lognormal":
		s2 := c.StdDev * c.StdDev
		return math.Exp(c.Mean + s2/2), math.Expm1(s2) * math.Exp(2*c.Mean+s2)
	case "exponential":
		return 1 / c.Lambda, 1 / (c.Lambda * c.Lambda)
	case "poisson":
		return c.Lambda, c.Lambda
	case "zipf":
		var z, m1, m2 float64
		for k := uint64(0); k <= c.IMax; k++ {
			p := math.Pow(c.V+float64(k), -c.S)
			z += p
			m1 += p * float64(k)
			m2 += p * float64(k) * float64(k)
		}
		m1 /= z
		return m1, m2/z - m1*m1
	}
	return math.NaN(), math.NaN()
}

// Secret describes the parameters and the true mean and variance, for the
// end of a --secret run.
func (g *Random) Secret() string {
	c := g.cfg
	mean, variance := g.Truth()
	var params string
	switch c.Dist {
	case "uniform", "ints":
		params = fmt.Sprintf("min=%s max=%s", fmtNum(c.Min), fmtNum(c.Max))
	case "normal", "lognormal":
		params = fmt.Sprintf("mean=%s stddev=%s", fmtNum(c.Mean), fmtNum(c.StdDev))
	case "exponential", "poisson":
		params = fmt.Sprintf("lambda=%s", fmtNum(c.Lambda))
	case "zipf":
		params = fmt.Sprintf("s=%s v=%s imax=%d", fmtNum(c.S), fmtNum(c.V), c.IMax)
	}
	return fmt.Sprintf("dist=%s %s: mean=%s variance=%s", c.Dist, params, fmtNum(mean), fmtNum(variance))
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }

// Next implements Source; it never ends.
func (g *Random) Next() (Message, bool) {
	c := g.cfg
	var b []byte
	switch c.Dist {
	case "uniform":
		b = appendFloat(c.Min + (c.Max-c.Min)*g.r.Float64())
	case "normal":
		b = appendFloat(c.Mean + c.StdDev*g.r.NormFloat64())
	case "lognormal":
		b = appendFloat(math.Exp(c.Mean + c.StdDev*g.r.NormFloat64()))
	case "exponential":
		b = appendFloat(g.r.ExpFloat64() / c.Lambda)
	case "poisson":
		b = strconv.AppendInt(nil, int64(g.pois.Rand()), 10)
	case "zipf":
		b = strconv.AppendUint(nil, g.zipf.Uint64(), 10)
	case "ints":
		b = strconv.AppendInt(nil, int64(c.Min)+g.r.Int64N(int64(c.Max-c.Min)+1), 10)
	}
	return Message{Data: b}, true
}

func appendFloat(x float64) []byte { return strconv.AppendFloat(nil, x, 'g', -1, 64) }

// Limit ends src after n messages (n <= 0: never).
func Limit(src Source, n int64) Source {
	if n <= 0 {
		return src
	}
	return &limited{src: src, left: n}
}

type limited struct {
	src  Source
	left int64
}

func (l *limited) Next() (Message, bool) {
	if l.left <= 0 {
		return Message{}, false
	}
	l.left--
	return l.src.Next()
}
