package devnet_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/devnet"
)

// northWind is Aesop's "The North Wind and the Sun" in George Fyler
// Townsend's translation (1867), in the public domain.
const northWind = "The North Wind and the Sun disputed as to which was the most powerful, and agreed that he should be declared the victor who could first strip a wayfaring man of his clothes. The North Wind first tried his power and blew with all his might, but the keener became his blasts, the closer the Traveler wrapped his cloak around him, until at last, resigning all hope of victory, he called upon the Sun to see what he could do. The Sun suddenly shone out with all his warmth. The Traveler no sooner felt his genial rays than he took off one garment after another, and at last, fainting with heat, undressed and bathed in a stream that lay in his path. Persuasion is better than Force."

// A real paragraph goes to Spanish and back through the whole sealed
// path: client, gateway, simulated workers, and Apertium in the workers'
// builtin backend.
func TestTranslateRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("apertium"); err != nil {
		t.Skip("Apertium is not installed: scripts/setup installs the Debian packages apertium and apertium-eng-spa")
	}
	for _, mode := range []string{"eng-spa", "spa-eng"} {
		if _, err := os.Stat("/usr/share/apertium/modes/" + mode + ".mode"); err != nil {
			t.Skipf("Apertium's %s pair is not installed: scripts/setup installs the Debian package apertium-eng-spa", mode)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	c, err := client.New(network.ClientConfig(client.Config{Policy: policy.InsecureSimulated()}))
	if err != nil {
		t.Fatal(err)
	}

	es, err := c.Translate(ctx, northWind, "en", "es")
	if err != nil {
		t.Fatal(err)
	}
	if !es.Worker.Simulated || es.End.Backend != "builtin" || es.End.Model != "apertium-eng-spa" || es.End.InputUnits != int64(len(northWind)) {
		t.Fatalf("worker %+v, end %+v", es.Worker, es.End)
	}
	lower := strings.ToLower(es.Text)
	for _, w := range []string{"el viento del norte", "sol", "victoria", "calor", "ropa", "persuasión es mejor"} {
		if !strings.Contains(lower, w) {
			t.Errorf("Spanish lacks %q:\n%s", w, es.Text)
		}
	}
	for _, w := range []string{"which", "clothes", "victory", "heat"} {
		if strings.Contains(lower, w) {
			t.Errorf("Spanish still has the English %q:\n%s", w, es.Text)
		}
	}

	back, err := c.Translate(ctx, es.Text, "es", "en")
	if err != nil {
		t.Fatal(err)
	}
	if back.End.Model != "apertium-spa-eng" {
		t.Fatalf("end %+v", back.End)
	}
	lower = strings.ToLower(back.Text)
	for _, w := range []string{"north wind", "sun", "victory", "heat", "clothes", "cloak", "traveller", "persuasion is better"} {
		if !strings.Contains(lower, w) {
			t.Errorf("round trip lost %q:\n%s", w, back.Text)
		}
	}
	t.Logf("en→es: %s", es.Text)
	t.Logf("es→en: %s", back.Text)
}
