package ringtest_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/ringtest"
)

var bg = context.Background()

func TestSmoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(nil)
		var keys []string
		for i := 0; i < 50; i++ {
			k := fmt.Sprintf("k%d", i)
			keys = append(keys, k)
			if err := c.Put(bg, []byte(k), []byte("v"), 3, 2); err != nil {
				t.Fatal(err)
			}
		}
		r.Kill(2)
		for _, k := range keys {
			if err := c.Put(bg, []byte(k), []byte("v2"), 3, 2); err != nil {
				t.Fatal(err)
			}
		}
		r.Restart(2)
		took := r.WaitConverged(keys, 3, time.Minute)
		t.Logf("converged %v after restart; ring time %v", took, time.Since(start))
	})
}
