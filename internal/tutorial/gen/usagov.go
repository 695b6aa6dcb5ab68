package gen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Replay yields the lines of a JSON-lines stream of 1.usa.gov records,
// byte for byte (without the line ending; blank lines are skipped), timed
// by the records' own timestamps: a record's t, or a heartbeat's
// _heartbeat_ value, in Unix seconds. A message is due at its timestamp
// minus the first one; a line without a timestamp (or that is not JSON)
// is due with the line before it. Records out of order are due at once
// (their time has passed).
type Replay struct {
	sc             *bufio.Scanner
	skipHeartbeats bool
	first, last    float64
	started        bool
	err            error
}

// NewReplay reads records from r. skipHeartbeats leaves out the
// {"_heartbeat_": T} lines (their time still counts).
func NewReplay(r io.Reader, skipHeartbeats bool) *Replay {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &Replay{sc: sc, skipHeartbeats: skipHeartbeats}
}

// Next implements Source.
func (p *Replay) Next() (Message, bool) {
	for p.sc.Scan() {
		line := bytes.TrimRight(p.sc.Bytes(), "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ts, heartbeat, ok := recordTime(line)
		if ok {
			if !p.started {
				p.first, p.started = ts, true
			}
			p.last = ts
		}
		if heartbeat && p.skipHeartbeats {
			continue
		}
		at := time.Duration(0)
		if p.started {
			at = time.Duration((p.last - p.first) * float64(time.Second))
		}
		return Message{Data: bytes.Clone(line), At: at, Timed: true}, true
	}
	p.err = p.sc.Err()
	return Message{}, false
}

// Err returns the read error that ended the replay, if any.
func (p *Replay) Err() error { return p.err }

// recordTime reads the timestamp of a record: t, or _heartbeat_.
func recordTime(line []byte) (ts float64, heartbeat, ok bool) {
	var rec struct {
		T         *float64 `json:"t"`
		Heartbeat *float64 `json:"_heartbeat_"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return 0, false, false
	}
	switch {
	case rec.Heartbeat != nil:
		return *rec.Heartbeat, true, true
	case rec.T != nil:
		return *rec.T, false, true
	}
	return 0, false, false
}

// Click is a synthesised 1.usa.gov record, with the stream's field names in
// its order (see the tutorial's 1usagov_reference.md).
type Click struct {
	A  string      `json:"a"`            // user agent
	C  string      `json:"c"`            // country
	NK int         `json:"nk"`           // 1: repeat client
	TZ string      `json:"tz"`           // time zone
	GR string      `json:"gr,omitempty"` // geo region
	G  string      `json:"g"`            // global hash
	H  string      `json:"h"`            // user hash
	L  string      `json:"l"`            // user that created the hash
	AL string      `json:"al,omitempty"` // accept-language
	HH string      `json:"hh"`           // host header
	R  string      `json:"r"`            // referrer
	U  string      `json:"u"`            // long url
	T  int64       `json:"t"`            // timestamp
	HC int64       `json:"hc"`           // hash creation timestamp
	CY string      `json:"cy,omitempty"` // city
	LL *[2]float64 `json:"ll,omitempty"` // latitude, longitude
}

// SynthStart is the first timestamp of a synthesised stream (the morning of
// the shared sample, 2012-03-16).
const SynthStart = 1331923247

// Synth yields plausible 1.usa.gov records: about one click a second, with
// referrers and targets drawn from skewed (Zipf) popularity so that the
// click graph has hubs, a heartbeat {"_heartbeat_": T} every 30 seconds of
// stream time (unless skipped), and the same sequence for the same seed.
type Synth struct {
	r              *rand.Rand
	refZipf        *rand.Zipf
	urlZipf        *rand.Zipf
	skipHeartbeats bool
	t              float64 // stream time, Unix seconds
	nextBeat       float64
	hashes         map[string]string
}

// NewSynth returns the synthesiser for seed.
func NewSynth(seed uint64, skipHeartbeats bool) *Synth {
	r := rand.New(rand.NewPCG(seed, 0x1a5a60f))
	return &Synth{
		r:              r,
		refZipf:        rand.NewZipf(r, 1.3, 1, uint64(len(synthReferrers)-1)),
		urlZipf:        rand.NewZipf(r, 1.2, 2, uint64(len(synthURLs)-1)),
		skipHeartbeats: skipHeartbeats,
		t:              SynthStart,
		nextBeat:       SynthStart + 30,
		hashes:         map[string]string{},
	}
}

// Next implements Source; it never ends.
func (s *Synth) Next() (Message, bool) {
	gap := s.r.ExpFloat64() // one click a second on average
	if s.t+gap >= s.nextBeat {
		beat := s.nextBeat
		s.nextBeat += 30
		if !s.skipHeartbeats {
			s.t = beat
			return Message{Data: fmt.Appendf(nil, `{"_heartbeat_":%d}`, int64(beat)), At: s.at(), Timed: true}, true
		}
	}
	s.t += gap
	c := s.click()
	b, _ := json.Marshal(c)
	return Message{Data: b, At: s.at(), Timed: true}, true
}

func (s *Synth) at() time.Duration {
	return time.Duration((math.Floor(s.t) - SynthStart) * float64(time.Second))
}

func (s *Synth) pick(xs []string) string { return xs[s.r.IntN(len(xs))] }

func (s *Synth) click() Click {
	ref := synthReferrers[s.refZipf.Uint64()]
	if strings.HasPrefix(ref, "http://t.co/") {
		ref += s.token(8)
	}
	u := synthURLs[s.urlZipf.Uint64()]
	if ref != "direct" && s.r.IntN(3) == 0 {
		// Referrers have favourite targets: a third of their clicks go
		// to the same page, which gives the graph strong links.
		u = synthURLs[int(hashString(ref))%len(synthURLs)]
	}
	loc := synthPlaces[s.r.IntN(len(synthPlaces))]
	if s.r.IntN(10) < 7 {
		loc = synthPlaces[s.r.IntN(5)] // mostly the US
	}
	g, ok := s.hashes[u]
	if !ok {
		g = s.token(6)
		s.hashes[u] = g
	}
	c := Click{
		A: s.pick(synthAgents), C: loc.country, NK: s.r.IntN(2), TZ: loc.tz, GR: loc.region,
		G: g, H: g, L: "bitly", HH: s.pick([]string{"1.usa.gov", "1.usa.gov", "1.usa.gov", "j.mp", "bit.ly"}),
		R: ref, U: u, T: int64(s.t), HC: int64(s.t) - int64(s.r.IntN(30*86400)), CY: loc.city,
	}
	if s.r.IntN(10) < 9 {
		c.AL = s.pick([]string{"en-US,en;q=0.8", "en-us", "en-US", "es-ES,es;q=0.8", "ja-JP", "pt-BR"})
	}
	if loc.city != "" {
		round6 := func(x float64) float64 { return math.Round(x*1e6) / 1e6 }
		c.LL = &[2]float64{round6(loc.lat + (s.r.Float64()-0.5)/10), round6(loc.lon + (s.r.Float64()-0.5)/10)}
	} else {
		c.GR = ""
	}
	return c
}

func (s *Synth) token(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.r.IntN(len(alphabet))]
	}
	return string(b)
}

func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// Popular first: Zipf picks low indexes most often.
var synthReferrers = []string{
	"direct",
	"http://www.facebook.com/",
	"http://t.co/",
	"http://www.AwareMap.com/",
	"https://twitter.com/",
	"http://www.google.com/url",
	"http://www.usa.gov/index.shtml",
	"http://m.facebook.com/",
	"http://www.shrewsbury-ma.gov/selco/",
	"http://news.google.com/",
	"http://www.reddit.com/r/science/",
	"http://yandex.ru/yandsearch?text=1.usa.gov",
	"http://togetter.com/li/39380",
	"http://www.nasa.gov/",
	"http://mail.yahoo.com/",
	"http://www.linkedin.com/",
	"http://plus.google.com/",
	"http://www.tumblr.com/dashboard",
}

var synthURLs = []string{
	"http://www.nasa.gov/mission_pages/nustar/main/index.html",
	"http://www.ncbi.nlm.nih.gov/pubmed/22415991",
	"http://www.monroecounty.gov/etc/911/rss.php",
	"http://boxer.senate.gov/en/press/releases/031612.cfm",
	"http://www.whitehouse.gov/blog/2012/03/16/weekly-address",
	"http://apod.nasa.gov/apod/ap120312.html",
	"http://www.fda.gov/Safety/Recalls/ucm296326.htm",
	"http://www.cdc.gov/features/dsalcohol/",
	"http://www.nps.gov/yell/index.htm",
	"http://earthobservatory.nasa.gov/IOTD/view.php?id=77405",
	"http://www.usda.gov/wps/portal/usda/usdahome",
	"http://www.census.gov/newsroom/releases/archives/population/cb12-55.html",
	"http://www.shrewsbury-ma.gov/selco/outages.html",
	"http://www.nsf.gov/news/news_summ.jsp?cntn_id=123456",
	"http://www.noaa.gov/features/02_monitoring/",
	"http://answers.usa.gov/system/selfservice.controller?CMD=VIEW_ARTICLE&ARTICLE_ID=10564",
	"http://www.state.gov/secretary/rm/2012/03/185905.htm",
	"http://www.nih.gov/news/health/mar2012/nia-15.htm",
	"http://science.nasa.gov/science-news/science-at-nasa/2012/15mar_cme/",
	"http://www.epa.gov/airnow/",
	"http://www.weather.gov/",
	"http://travel.state.gov/passport/",
	"http://www.irs.gov/newsroom/article/0,,id=254051,00.html",
	"http://www.hhs.gov/news/press/2012pres/03/20120316a.html",
	"http://www.loc.gov/today/pr/2012/12-045.html",
	"http://www.si.edu/Exhibitions/Details/The-Art-of-Video-Games-4706",
	"http://www.energy.gov/articles/energy-department-announces",
	"http://www.fbi.gov/news/stories/2012/march/",
	"http://www.dhs.gov/files/programs/",
	"http://www.uspto.gov/news/pr/2012/12-18.jsp",
}

type place struct {
	country, region, city, tz string
	lat, lon                  float64
}

// The first five are in the US.
var synthPlaces = []place{
	{"US", "DC", "Washington", "America/New_York", 38.9007, -77.0431},
	{"US", "MA", "Danvers", "America/New_York", 42.5767, -70.9549},
	{"US", "UT", "Provo", "America/Denver", 40.2181, -111.6133},
	{"US", "CA", "San Francisco", "America/Los_Angeles", 37.7749, -122.4194},
	{"US", "TX", "Houston", "America/Chicago", 29.7604, -95.3698},
	{"BR", "27", "Sao Paulo", "America/Sao_Paulo", -23.5475, -46.6361},
	{"JP", "40", "Tokyo", "Asia/Tokyo", 35.685, 139.7514},
	{"GB", "H9", "London", "Europe/London", 51.5142, -0.0931},
	{"DE", "", "", "Europe/Berlin", 0, 0},
	{"RU", "48", "Moscow", "Europe/Moscow", 55.7522, 37.6156},
	{"IN", "", "", "Asia/Calcutta", 0, 0},
	{"CA", "ON", "Toronto", "America/Toronto", 43.6667, -79.4167},
}

var synthAgents = []string{
	"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/535.11 (KHTML, like Gecko) Chrome/17.0.963.78 Safari/535.11",
	"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; WOW64; Trident/4.0)",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/534.52.7 (KHTML, like Gecko) Version/5.1.2 Safari/534.52.7",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 5_1 like Mac OS X) AppleWebKit/534.46 (KHTML, like Gecko) Mobile/9B176",
	"Mozilla/5.0 (Windows NT 6.1; rv:10.0.2) Gecko/20100101 Firefox/10.0.2",
	"GoogleMaps/RochesterNY",
	"Mozilla/5.0 (Linux; U; Android 2.3.6; en-us) AppleWebKit/533.1 (KHTML, like Gecko) Mobile Safari/533.1",
}
