package proxy_test

import (
	"fmt"

	"github.com/icetcp/icetcp/internal/proxy"
)

// A setting names the proxy per target: an explicit URL applies to every
// target and is shown without its password; "direct" uses none.
func ExampleSetting() {
	for _, s := range []string{"http://carol:s3cret@proxy.corp:3128", "socks5://10.0.1.1", "direct"} {
		pick, err := proxy.Setting(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		u, _ := pick("turn.example:443")
		if u == nil {
			fmt.Println("turn.example:443 directly")
			continue
		}
		fmt.Println("turn.example:443 through", u.Redacted())
	}
	_, err := proxy.Setting("https://proxy.corp")
	fmt.Println(err != nil)
	// Output:
	// turn.example:443 through http://carol:xxxxx@proxy.corp:3128
	// turn.example:443 through socks5://10.0.1.1:1080
	// turn.example:443 directly
	// true
}
