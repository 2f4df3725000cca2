//! One reply to a conversation, the way a deployed Teacher is used: the Teacher writes an
//! instruction for the last user turn, and the Student answers the conversation with the
//! instruction placed as in training. `wst serve` is this call behind HTTP; the server only
//! batches the Teacher step of requests that arrive together.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::query::Query;
use crate::student::{ChatMessage, DeltaSink, SamplingParams, StudentRequest, StudentSample, TokenUsage};
use crate::teacher::{TeacherSample, TeacherSampling};
use crate::types::{hash_str, mix};

use super::Pipeline;

/// Where a reply's instruction comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Guidance {
    /// The Teacher writes one for the last user turn.
    #[default]
    Teacher,
    /// This instruction, placed as the Teacher's would be.
    Fixed(Instruction),
    /// None: the conversation goes to the Student untouched (the control of an A/B test).
    Off,
}

/// What a reply asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RespondParams {
    /// Student answers wanted (OpenAI's `n`).
    pub n: usize,
    /// The Student's sampling settings.
    pub sampling: SamplingParams,
    /// Where the instruction comes from.
    pub guidance: Guidance,
    /// Keys the Teacher's random stream together with its seed: the same key, seed and weights
    /// give the same instruction (an evaluation keys it by the query's id).
    pub teacher_key: String,
}

/// A reply: the instruction used, the Student's answers and what each side spent.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The instruction the Student was given (None when guidance was off).
    pub instruction: Option<Instruction>,
    /// The Teacher's tokens (prompt read, instruction written); zero when it was not asked.
    pub teacher_usage: TokenUsage,
    /// Time the Teacher took (zero when it was not asked).
    pub teacher_time: Duration,
    /// The Student's answers, `n` of them.
    pub answers: Vec<StudentSample>,
    /// Time the Student took.
    pub student_time: Duration,
}

/// The Teacher's tokens for one sample: the prompt it read and the instruction it wrote.
pub fn teacher_usage(sample: &TeacherSample) -> TokenUsage {
    TokenUsage { prompt_tokens: sample.prompt_ids.len() as u64, completion_tokens: sample.completion_ids.len() as u64 }
}

/// The text of the last user turn of `messages`: the query the Teacher writes for.
pub fn last_user_turn(messages: &[ChatMessage]) -> Result<&str> {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.as_str())
        .ok_or_else(|| Error::invalid("messages", "the conversation has no user turn to write an instruction for"))
}

impl Pipeline {
    /// The Student's messages for a conversation with `instruction`: the last user turn is
    /// rendered through the Student prompt's template, as in training, and the Student prompt's
    /// system message goes first unless the conversation brings its own. Without an
    /// instruction the conversation is returned untouched.
    pub fn conversation_messages(&self, messages: &[ChatMessage], instruction: Option<&Instruction>) -> Result<Vec<ChatMessage>> {
        let Some(instruction) = instruction else {
            if messages.is_empty() {
                return Err(Error::invalid("messages", "the conversation is empty"));
            }
            return Ok(messages.to_vec());
        };
        let last = messages.iter().rposition(|m| m.role == "user").ok_or_else(|| Error::invalid("messages", "the conversation has no user turn to place an instruction in"))?;
        let rendered = self.student_prompt.render(&Query::new("", messages[last].content.clone()), Some(instruction))?;
        let (system, user): (Vec<ChatMessage>, Vec<ChatMessage>) = rendered.into_iter().partition(|m| m.role == "system");
        let mut out = Vec::with_capacity(messages.len() + 1);
        if !messages.iter().any(|m| m.role == "system") {
            out.extend(system);
        }
        out.extend_from_slice(&messages[..last]);
        out.extend(user);
        out.extend_from_slice(&messages[last + 1..]);
        Ok(out)
    }

    /// The Teacher's instruction for each (conversation's last user turn, key), sampled as one
    /// batch with the pipeline's Teacher settings and `seed`; what each gets does not depend on
    /// the others in the batch.
    pub async fn instruct_turns(&self, turns: &[(String, String)], seed: u64) -> Result<Vec<TeacherSample>> {
        let queries: Vec<Query> = turns.iter().map(|(text, key)| Query::new(key.clone(), text.clone())).collect();
        let sampling = TeacherSampling { num_generations: 1, seed, ..self.teacher_sampling.clone() };
        let groups = self.sample_instructions(&queries, &sampling).await?;
        Ok(groups.into_iter().filter_map(|mut g| g.pop()).collect())
    }

    /// The Teacher's sampling seed for replies: its settings' seed (a run's `grpo.seed`, as in
    /// evaluation).
    pub fn teacher_seed(&self) -> u64 {
        self.teacher_sampling.seed
    }

    /// A reply to `messages`: the Teacher's instruction (or the fixed one, or none) and `n`
    /// Student answers. With `sink`, the answers' text is also streamed as it is written.
    pub async fn respond(&self, messages: &[ChatMessage], params: &RespondParams, sink: Option<&DeltaSink>) -> Result<Reply> {
        let (instruction, teacher_usage, teacher_time) = match &params.guidance {
            Guidance::Off => (None, TokenUsage::default(), Duration::ZERO),
            Guidance::Fixed(i) => (Some(i.clone()), TokenUsage::default(), Duration::ZERO),
            Guidance::Teacher => {
                let start = Instant::now();
                let turn = last_user_turn(messages)?.to_string();
                let sample = self
                    .instruct_turns(&[(turn, params.teacher_key.clone())], self.teacher_seed())
                    .await?
                    .pop()
                    .ok_or_else(|| Error::Teacher("the Teacher wrote no instruction".into()))?;
                (Some(sample.instruction.clone()), teacher_usage(&sample), start.elapsed())
            }
        };
        self.respond_with(messages, instruction, teacher_usage, teacher_time, params, sink).await
    }

    /// The Student's side of [`Pipeline::respond`], for an instruction already chosen (a
    /// server samples the Teacher for many requests at once, then calls this for each).
    pub async fn respond_with(
        &self,
        messages: &[ChatMessage],
        instruction: Option<Instruction>,
        teacher_usage: TokenUsage,
        teacher_time: Duration,
        params: &RespondParams,
        sink: Option<&DeltaSink>,
    ) -> Result<Reply> {
        if params.n == 0 {
            return Err(Error::invalid("n", "ask for at least one answer"));
        }
        let request = StudentRequest { messages: self.conversation_messages(messages, instruction.as_ref())?, n: params.n, params: params.sampling.clone() };
        let start = Instant::now();
        let answers = match sink {
            Some(sink) => self.student.generate_streaming(&request, sink).await?,
            None => self.student.generate(&request).await?,
        };
        if answers.len() != params.n {
            return Err(Error::Student { student: self.student.name().to_string(), message: format!("asked for {} answers, got {}", params.n, answers.len()) });
        }
        Ok(Reply { instruction, teacher_usage, teacher_time, answers, student_time: start.elapsed() })
    }
}

/// The Student seed `wst eval` gives query `id` in a run seeded `seed`: a client that sends it
/// (with `id` as the Teacher key) gets the evaluation's answers back from a server.
pub fn eval_student_seed(seed: u64, id: &str) -> u64 {
    mix(&[seed, hash_str(id)])
}
