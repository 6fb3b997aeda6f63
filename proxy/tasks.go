package proxy

import (
	"net/http"
	"slices"
	"strings"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// modelList is OpenAI's answer to GET /v1/models.
type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// chatModels lists the models the gateway lists for the chat workers that
// pass verification, each once, sorted. The names are the gateway's (not
// authenticated): a request for one is still sealed only to verified
// workers, and the reply's end summary names the model that answered.
func (p *Proxy) chatModels(r *http.Request) ([]model, *apiError) {
	workers, _, err := p.cfg.Client.Workers(r.Context(), proto.TaskChat)
	if err != nil {
		return nil, errorFor(err)
	}
	var names []string
	for _, w := range workers {
		for _, m := range w.Models {
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
	}
	slices.Sort(names)
	out := []model{}
	for _, n := range names {
		out = append(out, model{ID: n, Object: "model", OwnedBy: "sealgate"})
	}
	return out, nil
}

// models serves GET /v1/models.
func (p *Proxy) models(w http.ResponseWriter, r *http.Request, rec *record) *apiError {
	ms, e := p.chatModels(r)
	if e != nil {
		return e
	}
	writeJSON(w, modelList{Object: "list", Data: ms})
	return nil
}

// model serves GET /v1/models/{model}.
func (p *Proxy) model(w http.ResponseWriter, r *http.Request, rec *record) *apiError {
	name := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	ms, e := p.chatModels(r)
	if e != nil {
		return e
	}
	for _, m := range ms {
		if m.ID == name {
			writeJSON(w, m)
			return nil
		}
	}
	return &apiError{status: http.StatusNotFound, typ: typeInvalidRequest, code: "model_not_found", param: "model", msg: "no verified worker serves model " + clip(name, 64)}
}

// summarizeRequest is the body of POST /v1/sealgate/summarize.
type summarizeRequest struct {
	Text      string  `json:"text"`
	Sentences int     `json:"sentences"`
	Ratio     float64 `json:"ratio"`
}

// translateRequest is the body of POST /v1/sealgate/translate.
type translateRequest struct {
	Text string `json:"text"`
	From string `json:"from"`
	To   string `json:"to"`
}

// taskResult is the answer of the task shortcuts.
type taskResult struct {
	ID       string         `json:"id"`
	Object   string         `json:"object"`
	Created  int64          `json:"created"`
	Text     string         `json:"text"`
	Model    string         `json:"model"`
	Usage    taskUsage      `json:"usage"`
	Sealgate sealgateReport `json:"sealgate"`
}

type taskUsage struct {
	InputUnits  int64 `json:"input_units"`
	OutputUnits int64 `json:"output_units"`
}

// summarize serves POST /v1/sealgate/summarize.
func (p *Proxy) summarize(w http.ResponseWriter, r *http.Request, rec *record) *apiError {
	var req summarizeRequest
	if e := decodeBody(w, r, p.cfg.MaxBodyBytes, &req, nil); e != nil {
		return e
	}
	if strings.TrimSpace(req.Text) == "" {
		return badRequest("invalid_value", "text", "text: found none, want the document to summarize")
	}
	res, err := p.cfg.Client.Summarize(r.Context(), req.Text, client.SummarizeOptions{Sentences: req.Sentences, Ratio: req.Ratio})
	return p.writeTask(w, rec, "sealgate.summary", res, err)
}

// translate serves POST /v1/sealgate/translate.
func (p *Proxy) translate(w http.ResponseWriter, r *http.Request, rec *record) *apiError {
	var req translateRequest
	if e := decodeBody(w, r, p.cfg.MaxBodyBytes, &req, nil); e != nil {
		return e
	}
	switch {
	case strings.TrimSpace(req.Text) == "":
		return badRequest("invalid_value", "text", "text: found none, want the text to translate")
	case req.From == "" || req.To == "":
		return badRequest("invalid_value", "from", "from and to: want language codes such as en and es")
	}
	res, err := p.cfg.Client.Translate(r.Context(), req.Text, req.From, req.To)
	return p.writeTask(w, rec, "sealgate.translation", res, err)
}

func (p *Proxy) writeTask(w http.ResponseWriter, rec *record, object string, res *client.Result, err error) *apiError {
	if err != nil {
		return errorFor(err)
	}
	rec.workerID, rec.requestID = res.Worker.ID, res.RequestID
	workerHeaders(w.Header(), res.RequestID, res.Worker)
	writeJSON(w, taskResult{
		ID: "sgtask-" + res.RequestID, Object: object, Created: p.cfg.Now().Unix(), Text: res.Text, Model: res.End.Model,
		Usage:    taskUsage{InputUnits: res.End.InputUnits, OutputUnits: res.End.OutputUnits},
		Sealgate: report(res.RequestID, res.Worker, res.Candidates, res.End),
	})
	return nil
}
