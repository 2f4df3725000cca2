//! `POST /v1/chat/completions`: checks, admission, the Teacher's instruction (batched), then the
//! Student through [`Pipeline::respond_with`], whole or streamed as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wst_sdk::respond::{Guidance, Reply, RespondParams, last_user_turn, teacher_usage};
use wst_sdk::student::{AnswerDelta, TokenUsage};
use wst_sdk::{ChatMessage, Instruction, SamplingParams};

use crate::error::ApiError;
use crate::limits::Ticket;
use crate::metrics::{Latency, Tokens};
use crate::schema::{AssistantMessage, ChatRequest, ChatResponse, Choice, Usage, UsageItems, WstReply};
use crate::server::{AppState, Model, unix_now};

/// The header that carries the instruction (percent-encoded outside printable ASCII).
pub const INSTRUCTION_HEADER: &str = "x-wst-instruction";

/// What a checked request asks for.
struct Plan {
    model: usize,
    messages: Vec<ChatMessage>,
    params: RespondParams,
    stream: bool,
    include_usage: bool,
}

pub(crate) async fn chat_completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let mut model_name = String::new();
    let response = match handle(&state, &headers, body, start, &mut model_name).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "request failed");
            }
            e.into_response()
        }
    };
    state.metrics.request(&model_name, response.status().as_u16());
    response
}

async fn handle(state: &Arc<AppState>, headers: &HeaderMap, body: Body, start: Instant, model_name: &mut String) -> Result<Response, ApiError> {
    // The body is read first, whatever the answer: one left unread makes the connection reset
    // under the client, which then never sees the 401 or 503 either.
    let body = crate::body::read_limited(body, state.options.max_body_bytes).await;
    state.authorize(headers)?;
    let models = state.ready()?;
    let body = body?;
    let request: ChatRequest = serde_json::from_slice(&body).map_err(|e| ApiError::malformed(format!("the body is not a chat completion request: {e}")))?;
    let plan = plan(&request, models)?;
    *model_name = models[plan.model].name.clone();
    let mut ticket = state.admission.admit(&state.metrics)?;
    let deadline = tokio::time::Instant::from_std(start) + state.options.request_timeout;
    let timeout = state.options.request_timeout.as_secs_f64();
    let model = &models[plan.model];
    let prepared = tokio::time::timeout_at(deadline, async {
        ticket.run().await;
        instruction(state, model, &plan).await
    })
    .await
    .map_err(|_| ApiError::timeout(timeout))??;
    if plan.stream {
        return Ok(stream(state.clone(), model.pipeline.clone(), model.name.clone(), plan, prepared, ticket, deadline, start));
    }
    let (instruction, usage, teacher_time) = prepared;
    let reply = tokio::time::timeout_at(deadline, model.pipeline.respond_with(&plan.messages, instruction, usage, teacher_time, &plan.params, None))
        .await
        .map_err(|_| ApiError::timeout(timeout))?
        .map_err(|e| ApiError::from_sdk(&e))?;
    drop(ticket);
    record(state, &model.name, &reply, start);
    let usage = usage_of(&reply);
    let body = ChatResponse {
        id: completion_id(),
        object: "chat.completion",
        created: unix_now(),
        model: model.name.clone(),
        choices: reply
            .answers
            .iter()
            .enumerate()
            .map(|(index, a)| Choice {
                index,
                message: AssistantMessage { role: "assistant", content: a.text.clone() },
                finish_reason: a.finish_reason.as_str().to_string(),
                logprobs: None,
            })
            .collect(),
        usage,
        wst: state.options.echo_instruction.then(|| WstReply { instruction: reply.instruction.as_ref().map(|i| i.text.clone()) }),
    };
    let mut response = axum::Json(body).into_response();
    echo_header(state, &mut response, reply.instruction.as_ref());
    Ok(response)
}

/// Checks the request against the served models and turns it into a plan.
fn plan(request: &ChatRequest, models: &[Model]) -> Result<Plan, ApiError> {
    let model =
        models.iter().position(|m| m.name == request.model).ok_or_else(|| ApiError::unknown_model(&request.model, &models.iter().map(|m| m.name.clone()).collect::<Vec<_>>()))?;
    let messages = request.conversation()?;
    let n = request.n()?;
    request.check_sampling()?;
    request.check_supported()?;
    let pipeline = &models[model].pipeline;
    let defaults = pipeline.student_sampling();
    let seed = request.seed()?;
    let sampling = SamplingParams {
        temperature: request.temperature.unwrap_or(defaults.temperature),
        top_p: request.top_p.unwrap_or(defaults.top_p),
        max_tokens: request.max_completion_tokens.or(request.max_tokens).unwrap_or(defaults.max_tokens),
        seed: seed.or(defaults.seed),
        stop: request.stop()?.unwrap_or_else(|| defaults.stop.clone()),
        ..defaults.clone()
    };
    let guidance = match (&request.wst.instruct, &request.wst.instruction) {
        (Some(false), Some(_)) => return Err(ApiError::invalid("wst.instruction", "`wst.instruct` is false, so no instruction may be given")),
        (_, Some(text)) => Guidance::Fixed(Instruction::new(text.clone())),
        (Some(false), None) => Guidance::Off,
        (Some(true), None) if !pipeline.has_teacher() => return Err(ApiError::invalid("wst.instruct", &format!("`{}` is served without a Teacher", request.model))),
        (_, None) if pipeline.has_teacher() => Guidance::Teacher,
        (_, None) => Guidance::Off,
    };
    // The Teacher's stream: the caller's key, else one from the seed (the same seed repeats the
    // instruction), else a fresh one.
    let teacher_key = match (&request.wst.query_id, seed) {
        (Some(id), _) => id.clone(),
        (None, Some(seed)) => format!("seed:{seed}"),
        (None, None) => format!("random:{}", rand::random::<u64>()),
    };
    let include_usage = request.stream_options.as_ref().is_some_and(|o| o.include_usage);
    if request.stream_options.is_some() && !request.stream {
        return Err(ApiError::invalid("stream_options", "`stream_options` is only allowed when `stream` is true"));
    }
    Ok(Plan { model, messages, params: RespondParams { n, sampling, guidance, teacher_key }, stream: request.stream, include_usage })
}

/// The instruction of a plan: the Teacher's (through the batcher), the fixed one, or none.
async fn instruction(state: &AppState, model: &Model, plan: &Plan) -> Result<(Option<Instruction>, TokenUsage, Duration), ApiError> {
    match (&plan.params.guidance, &model.batcher) {
        (Guidance::Teacher, Some(batcher)) => {
            let start = Instant::now();
            let turn = last_user_turn(&plan.messages).map_err(|e| ApiError::from_sdk(&e))?.to_string();
            let sample = batcher.instruct(turn, plan.params.teacher_key.clone()).await?;
            let took = start.elapsed();
            state.metrics.latency(Latency::Teacher, &model.name, took);
            Ok((Some(sample.instruction.clone()), teacher_usage(&sample), took))
        }
        (Guidance::Fixed(i), _) => Ok((Some(i.clone()), TokenUsage::default(), Duration::ZERO)),
        _ => Ok((None, TokenUsage::default(), Duration::ZERO)),
    }
}

fn usage_of(reply: &Reply) -> Usage {
    let student = reply.answers.iter().fold(TokenUsage::default(), |mut u, a| {
        u += a.usage;
        u
    });
    Usage {
        prompt_tokens: student.prompt_tokens,
        completion_tokens: student.completion_tokens,
        total_tokens: student.prompt_tokens + student.completion_tokens,
        wst: UsageItems {
            teacher_prompt_tokens: reply.teacher_usage.prompt_tokens,
            teacher_completion_tokens: reply.teacher_usage.completion_tokens,
            student_prompt_tokens: student.prompt_tokens,
            student_completion_tokens: student.completion_tokens,
        },
    }
}

fn record(state: &AppState, model: &str, reply: &Reply, start: Instant) {
    let m = &state.metrics;
    let u = usage_of(reply);
    m.latency(Latency::Student, model, reply.student_time);
    m.latency(Latency::EndToEnd, model, start.elapsed());
    m.tokens(Tokens::StudentPrompt, model, u.prompt_tokens);
    m.tokens(Tokens::StudentGeneration, model, u.completion_tokens);
    m.tokens(Tokens::TeacherPrompt, model, u.wst.teacher_prompt_tokens);
    m.tokens(Tokens::TeacherGeneration, model, u.wst.teacher_completion_tokens);
}

fn completion_id() -> String {
    format!("chatcmpl-{:016x}{:08x}", rand::random::<u64>(), rand::random::<u32>())
}

fn echo_header(state: &AppState, response: &mut Response, instruction: Option<&Instruction>) {
    if !state.options.echo_instruction {
        return;
    }
    if let Some(i) = instruction
        && let Ok(v) = HeaderValue::from_str(&percent_encode(&i.text))
    {
        response.headers_mut().insert(INSTRUCTION_HEADER, v);
    }
}

/// `text` with `%`, control characters and every non-ASCII byte percent-encoded, so that any
/// instruction fits in a header value (decode it as a URL component).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A streamed reply: the first chunk of each choice carries the role (and the first, the
/// instruction), then content pieces as the Student writes them, one chunk with each choice's
/// finish reason, the usage chunk when asked for, and `data: [DONE]`.
#[allow(clippy::too_many_arguments)]
fn stream(
    state: Arc<AppState>,
    pipeline: Arc<wst_sdk::Pipeline>,
    model: String,
    plan: Plan,
    prepared: (Option<Instruction>, TokenUsage, Duration),
    ticket: Ticket,
    deadline: tokio::time::Instant,
    start: Instant,
) -> Response {
    let (events, rx) = mpsc::unbounded_channel::<Event>();
    let (instruction, teacher_tokens, teacher_time) = prepared;
    let id = completion_id();
    let created = unix_now();
    let include_usage = plan.include_usage;
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |choices: Value, extra: Option<(&str, Value)>| {
            let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices});
            if include_usage {
                c["usage"] = Value::Null;
            }
            if let Some((k, v)) = extra {
                c[k] = v;
            }
            Event::default().data(c.to_string())
        }
    };
    for index in 0..plan.params.n {
        let first = json!([{"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]);
        let extra = (index == 0 && state.options.echo_instruction).then(|| ("wst", json!({"instruction": instruction.as_ref().map(|i| i.text.clone())})));
        let _ = events.send(chunk(first, extra));
    }
    let header_instruction = instruction.clone();
    let task_state = state.clone();
    tokio::spawn(async move {
        let _ticket = ticket;
        let (sink, mut pieces) = mpsc::unbounded_channel::<AnswerDelta>();
        let work = pipeline.respond_with(&plan.messages, instruction, teacher_tokens, teacher_time, &plan.params, Some(&sink));
        tokio::pin!(work);
        let mut first_token = false;
        let mut send_piece = |d: AnswerDelta| {
            if !first_token {
                first_token = true;
                task_state.metrics.latency(Latency::FirstToken, &model, start.elapsed());
            }
            events.send(chunk(json!([{"index": d.index, "delta": {"content": d.text}, "logprobs": null, "finish_reason": null}]), None))
        };
        let outcome = loop {
            tokio::select! {
                r = &mut work => break Some(r),
                Some(d) = pieces.recv() => {
                    if send_piece(d).is_err() {
                        break None;
                    }
                }
                _ = events.closed() => break None,
                _ = tokio::time::sleep_until(deadline) => break Some(Err(wst_sdk::Error::Student { student: model.clone(), message: "timed out".into() })),
            }
        };
        let Some(outcome) = outcome else {
            tracing::debug!(model, "the client went away; its answers were cancelled");
            return;
        };
        while let Ok(d) = pieces.try_recv() {
            let _ = send_piece(d);
        }
        match outcome {
            Ok(reply) => {
                for (index, a) in reply.answers.iter().enumerate() {
                    let _ = events.send(chunk(json!([{"index": index, "delta": {}, "logprobs": null, "finish_reason": a.finish_reason.as_str()}]), None));
                }
                if include_usage {
                    let _ = events.send(chunk(json!([]), Some(("usage", serde_json::to_value(usage_of(&reply)).unwrap_or(Value::Null)))));
                }
                record(&task_state, &model, &reply, start);
            }
            Err(e) => {
                tracing::warn!(model, error = %e, "a streamed request failed");
                let _ = events.send(Event::default().data(ApiError::from_sdk(&e).body().to_string()));
            }
        }
        let _ = events.send(Event::default().data("[DONE]"));
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let mut response = Sse::new(stream).into_response();
    echo_header(&state, &mut response, header_instruction.as_ref());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_printable_ascii_and_encodes_the_rest() {
        assert_eq!(percent_encode("Use less than 50 tokens."), "Use less than 50 tokens.");
        assert_eq!(percent_encode("a\nb 100% é"), "a%0Ab 100%25 %C3%A9");
    }
}
