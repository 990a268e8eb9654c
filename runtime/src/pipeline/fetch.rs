//! Stage 5: service calls in parallel with retrieval (PO-08: both inside 200 ms).
//!
//! [`plan`] decides from the intent which [`Services`] calls and which retrieval to run;
//! [`gather`] runs them concurrently, each group under its own budget
//! (`service_calls`, `retrieval`). Calls that miss the deadline or fail are dropped and
//! the answer is built from the rest (`services_partial`, `retrieval_skipped`).
//! The results feed [`super::respond`].

use super::guardrails::Guardrails;
use super::intent::Classified;
use super::Run;
use crate::backends::filters::Filters;
use crate::backends::{BackendError, Retriever, Services};
use crate::domain::{Corpus, Intent, Passage, Scope, ToolResult, Turn};
use crate::metrics::{Degradation, Stage};
use futures_util::future::join_all;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    SearchCatalog {
        limit: usize,
    },
    /// With the volume number the question names, if any: then the volume's own price
    /// and stock are looked up.
    LookupTitle {
        volume: Option<u32>,
    },
    OrderStatus {
        order_id: String,
    },
    Recommend {
        seen: Vec<String>,
        limit: usize,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchPlan {
    pub calls: Vec<Call>,
    pub retrieval: Option<(usize, Corpus)>,
    /// Results known without calling anything (e.g. no order number given).
    pub known: Vec<ToolResult>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    pub tools: Vec<ToolResult>,
    pub passages: Vec<Passage>,
}

pub fn plan(c: &Classified, history: &[Turn]) -> FetchPlan {
    let mut p = FetchPlan::default();
    match c.intent {
        Intent::OrderStatus => match &c.entities.order_id {
            Some(id) => p.calls.push(Call::OrderStatus {
                order_id: id.clone(),
            }),
            None => p.known.push(ToolResult::OrderNumberMissing),
        },
        Intent::ProductQuestion => {
            p.calls.push(Call::LookupTitle {
                volume: c.entities.volume,
            });
            p.retrieval = Some((3, Corpus::Catalog));
        }
        Intent::ProductSearch => {
            // "do you have one piece volume 3?" is a search that names a volume: its
            // stock and price are looked up as well as the series.
            if let Some(volume) = c.entities.volume {
                p.calls.push(Call::LookupTitle {
                    volume: Some(volume),
                });
            }
            p.calls.push(Call::SearchCatalog { limit: 5 });
            p.retrieval = Some((3, Corpus::Catalog));
        }
        Intent::Recommendation => {
            // Most recent turn first, each turn's titles in answer order, so the first id
            // is what "more like that one" most likely refers to.
            let seen = history
                .iter()
                .rev()
                .flat_map(|t| t.title_ids.iter().cloned())
                .collect();
            p.calls.push(Call::Recommend { seen, limit: 3 });
            p.retrieval = Some((3, Corpus::Catalog));
        }
        Intent::ReturnPolicy => p.retrieval = Some((2, Corpus::Faq)),
        Intent::Greeting | Intent::Escalation | Intent::OutOfScope => {}
    }
    p
}

async fn call(
    services: &dyn Services,
    call: &Call,
    text: &str,
    scope: Scope<'_>,
) -> Result<ToolResult, BackendError> {
    Ok(match call {
        Call::SearchCatalog { limit } => ToolResult::CatalogSearch {
            query: text.to_string(),
            titles: services.search_catalog(text, *limit).await?,
        },
        Call::LookupTitle { volume: None } => ToolResult::TitleLookup {
            title: services.lookup_title(text).await?,
        },
        Call::LookupTitle {
            volume: Some(number),
        } => match services.lookup_volume(text, *number).await? {
            Some((title, volume)) => ToolResult::VolumeLookup {
                title,
                number: *number,
                volume,
            },
            None => ToolResult::TitleLookup { title: None },
        },
        Call::OrderStatus { order_id } => ToolResult::OrderLookup {
            order_id: order_id.clone(),
            order: services.order_status(order_id, scope).await?,
        },
        Call::Recommend { seen, limit } => {
            let r = services.recommend(text, seen, *limit).await?;
            ToolResult::Recommendations {
                seed: r.seed,
                titles: r.titles,
            }
        }
    })
}

#[allow(clippy::too_many_arguments)] // one call site, reads as the stage's inputs
pub async fn gather(
    services: &dyn Services,
    retriever: &dyn Retriever,
    c: &Classified,
    text: &str,
    scope: Scope<'_>,
    history: &[Turn],
    filters: &Filters,
    guardrails: &Guardrails,
    run: &mut Run<'_>,
) -> Fetched {
    let plan = plan(c, history);
    let svc_budget = run.budget(Stage::ServiceCalls);
    let ret_budget = run.budget(Stage::Retrieval);
    let start = Instant::now();

    let services_fut = async {
        if plan.calls.is_empty() {
            return None;
        }
        // One shared deadline: the group is as late as its slowest call, never later.
        let deadline = start + svc_budget;
        let results = join_all(
            plan.calls
                .iter()
                .map(|c| tokio::time::timeout_at(deadline, call(services, c, text, scope))),
        )
        .await;
        Some((results, start.elapsed()))
    };
    let retrieval_fut = async {
        let (k, corpus) = plan.retrieval?;
        let r =
            tokio::time::timeout(ret_budget, retriever.retrieve(text, k, corpus, filters)).await;
        Some((r, start.elapsed()))
    };
    let (svc, ret) = tokio::join!(services_fut, retrieval_fut);

    let mut out = Fetched {
        tools: plan.known,
        passages: Vec::new(),
    };
    if let Some((results, elapsed)) = svc {
        let mut partial = false;
        let mut timed_out = false;
        for r in results {
            match r {
                Ok(Ok(tool)) => out.tools.push(tool),
                Ok(Err(e)) => {
                    crate::warn_limited!(error = %e, "service call failed");
                    partial = true;
                }
                Err(_) => {
                    partial = true;
                    timed_out = true;
                }
            }
        }
        run.record(Stage::ServiceCalls, elapsed, timed_out);
        if partial {
            run.degrade(Degradation::ServicesPartial);
        }
    }
    if let Some((r, elapsed)) = ret {
        run.record(Stage::Retrieval, elapsed, r.is_err());
        match r {
            Ok(Ok(passages)) => {
                out.passages = passages
                    .into_iter()
                    .filter(|p| guardrails.passage_is_safe(&p.text))
                    .collect();
            }
            Ok(Err(e)) => {
                crate::warn_limited!(error = %e, "retrieval failed");
                run.degrade(Degradation::RetrievalSkipped);
            }
            Err(_) => run.degrade(Degradation::RetrievalSkipped),
        }
    }
    out
}
