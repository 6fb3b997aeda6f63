# sealgate: the two commands a newcomer runs are `make demo` and `make test`.
GO ?= go

.PHONY: demo test build vet bench fmt

## demo: start a local gateway and two simulated-TEE workers, summarize a sample document privately
demo:
	scripts/setup
	$(GO) run ./cmd/sealgate demo

## test: vet and run every test with the race detector (what CI runs)
test:
	scripts/setup
	scripts/test

build:
	scripts/setup
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet ./...

## bench: the performance report: every measurement against its same-run baseline, with its goal (bench-report.md; -quick: make bench BENCH=-quick)
bench:
	scripts/bench $(BENCH)

fmt:
	gofmt -w $$(git ls-files '*.go')
