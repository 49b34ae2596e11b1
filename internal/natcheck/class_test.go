package natcheck

import (
	"errors"
	"strings"
	"testing"
)

func TestClassString(t *testing.T) {
	for _, tc := range []struct {
		c    Class
		want string
	}{
		{Class{Mapping: EndpointIndependent, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNRefused},
			"v1 mapping=eim port=preserve alloc=preserve syn=rst"},
		{Class{Mapping: AddressAndPortDependent, Allocation: Sequential, Delta: -2, InboundSYN: SYNDropped},
			"v1 mapping=apdm port=remap alloc=seq delta=-2 syn=drop"},
		{Class{Mapping: NoNAT, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNPassed},
			"v1 mapping=nonat port=preserve alloc=preserve syn=pass"},
		{Class{}, "v1 mapping=unknown port=remap alloc=unknown syn=unknown"},
		{Class{Mapping: AddressDependent, Allocation: Random, Delta: 5}, "v1 mapping=adm port=remap alloc=random syn=unknown"},
		// Sequential without a usable delta is written as unknown.
		{Class{Allocation: Sequential}, "v1 mapping=unknown port=remap alloc=unknown syn=unknown"},
		{Class{Allocation: Sequential, Delta: 70000}, "v1 mapping=unknown port=remap alloc=unknown syn=unknown"},
		// Out-of-range enum values are written as unknown.
		{Class{Mapping: 99, Allocation: 99, InboundSYN: 99}, "v1 mapping=unknown port=remap alloc=unknown syn=unknown"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestParseClass(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Class
	}{
		{"v1 mapping=eim port=preserve alloc=preserve syn=rst",
			Class{Mapping: EndpointIndependent, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNRefused}},
		{"v1 mapping=apdm port=remap alloc=seq delta=+3 syn=drop",
			Class{Mapping: AddressAndPortDependent, Allocation: Sequential, Delta: 3, InboundSYN: SYNDropped}},
		{"v1 syn=pass mapping=nonat", Class{Mapping: NoNAT, InboundSYN: SYNPassed}}, // any order, keys may be missing
		{"v1", Class{}},
		// Forward compatibility: a later version, unknown keys, unknown values.
		{"v2 mapping=eim hairpin=yes syn=rst-after-6s filter=apdf", Class{Mapping: EndpointIndependent}},
		{"v1 mapping=cone port=maybe alloc=fancy", Class{}},
		// A sequential allocation needs a usable delta.
		{"v1 alloc=seq", Class{}},
		{"v1 alloc=seq delta=0", Class{}},
		{"v1 alloc=seq delta=65536", Class{}},
		{"v1 alloc=seq delta=x", Class{}},
		{"v1 alloc=seq delta=-65535", Class{Allocation: Sequential, Delta: -65535}},
		{"v1 alloc=random delta=4", Class{Allocation: Random}}, // delta only with seq
	} {
		got, err := ParseClass(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseClass(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseClassRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"mapping=eim",     // no version
		"v0 mapping=eim",  // versions start at 1
		"v01",             // no leading zero
		"V1",              // lower case
		"v12345",          // too long a version
		"v1x",             // not a number
		"v1  mapping=eim", // double space
		" v1",             // leading space
		"v1 ",             // trailing space
		"v1\tmapping=eim",
		"v1 mapping",     // no '='
		"v1 =eim",        // empty key
		"v1 mapping=",    // empty value
		"v1 Mapping=eim", // upper case
		"v1 mapping=eim mapping=eim",
		"v1 x=1 x=2",      // duplicate unknown key
		"v1 mapping=e=m",  // '=' in a value
		"v1 map+ping=eim", // '+' in a key
		"v1 mapping=éim",  // non-ASCII
		"v1 " + strings.Repeat("k", 33) + "=v",
		"v1 " + strings.Repeat("a=b ", 15) + "c=d", // 17 tokens
		"v1 k=" + strings.Repeat("x", 300),
	} {
		if c, err := ParseClass(in); !errors.Is(err, ErrBadClass) {
			t.Errorf("ParseClass(%q) = %+v, %v; want ErrBadClass", in, c, err)
		}
	}
}

// FuzzParseClass: ParseClass never panics, stays within its bounds, and
// whatever it accepts survives String and ParseClass unchanged.
func FuzzParseClass(f *testing.F) {
	for _, s := range []string{
		"v1 mapping=eim port=preserve alloc=preserve syn=rst",
		"v1 mapping=apdm port=remap alloc=seq delta=-2 syn=drop",
		"v7 future=key mapping=adm",
		"v1 alloc=seq delta=99999",
		"",
		"v1  ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClass(s)
		if err != nil {
			if !errors.Is(err, ErrBadClass) {
				t.Fatalf("error %v does not wrap ErrBadClass", err)
			}
			return
		}
		if len(s) > maxClassLen {
			t.Fatalf("accepted %d bytes", len(s))
		}
		if c.Mapping >= mappings || c.Allocation >= allocations || c.InboundSYN >= inboundSYNs {
			t.Fatalf("out-of-range value from %q: %+v", s, c)
		}
		if (c.Allocation == Sequential) != (c.Delta != 0) || !validDelta(c.Delta) && c.Delta != 0 {
			t.Fatalf("delta %d with allocation %s from %q", c.Delta, c.Allocation, s)
		}
		again, err := ParseClass(c.String())
		if err != nil || again != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), again, err)
		}
	})
}

func TestResultClass(t *testing.T) {
	r := Result{Mapping: EndpointIndependent, Allocation: Random, Delta: 7, InboundSYN: SYNDropped}
	if c := r.Class(); c.Delta != 0 || c.Allocation != Random || c.String() != "v1 mapping=eim port=remap alloc=random syn=drop" {
		t.Fatalf("Class() = %+v", c)
	}
	r.Allocation = Sequential
	if c := r.Class(); c.Delta != 7 {
		t.Fatalf("sequential Class() = %+v", c)
	}
}
