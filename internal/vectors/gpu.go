package vectors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
)

// RootsFixtureGPU marks the gpu vectors: TDX bundles whose quote is under
// the TDX fixture root and whose GPU evidence is under the nvgpu fixture
// device and RIM roots.
const RootsFixtureGPU = "fixture-gpu"

// GPUBundles wraps every nvgpu vector (testvectors/attestation/nvgpu) into
// a whole TDX bundle as its GPU 0, under a policy that requires GPUs with
// the vector's GPU rules, and returns the files of
// testvectors/attestation/gpu: one bundle per vector and manifest.json.
func GPUBundles() (map[string][]byte, error) {
	vs, err := nvgputest.Vectors()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	var es []Entry
	for _, v := range vs {
		bundle, p, err := tdxtest.GPUBundle([][]byte{v.Evidence})
		if err != nil {
			return nil, fmt.Errorf("gpu vector %s: %v", v.Name, err)
		}
		rules := v.Rules
		p.Name, p.RequireGPU, p.GPU = "gpu-vector-"+v.Name, true, &rules
		pol, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		want := Want(v.Want)
		if want.Code != "ok" {
			want.Field = "gpu[0] " + want.Field
		}
		files[v.Name+".bundle"] = bundle
		es = append(es, Entry{
			Name: v.Name, Kind: "tdx", File: v.Name + ".bundle", VerifyAt: v.VerifyAt, Policy: pol,
			Roots: RootsFixtureGPU, Want: want,
			Description: "the nvgpu vector of the same name as GPU 0 of a valid TDX bundle: " + v.Description,
		})
	}
	m, err := json.MarshalIndent(es, "", "  ")
	if err != nil {
		return nil, err
	}
	files["manifest.json"] = append(m, '\n')
	return files, nil
}

// WriteGPUBundles writes GPUBundles into testvectors/attestation/gpu.
func WriteGPUBundles(tb testing.TB) {
	tb.Helper()
	files, err := GPUBundles()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(Dir(tb), "gpu")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}
