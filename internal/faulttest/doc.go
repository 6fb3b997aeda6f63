// Package faulttest holds sealgate's fault tests: a whole network of real
// processes on 127.0.0.1 (the sealgate gateway and sealgate-worker
// binaries, built once per test run, set up with the sealgate CLI and
// used through the Go client), broken on purpose. A worker is killed
// before its first response byte and in the middle of a stream, a worker
// stops answering re-attestation, the gateway is restarted, and two
// gateway replicas share one PostgreSQL database.
//
// The package has no code of its own beyond this comment; everything is
// in its tests. INSECURE: the workers run on the simulated TEE, and the
// gateways admit them under the simulated-TEE development policy.
package faulttest
