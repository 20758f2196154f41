//! The variants of `eval run`: what each name means, and which `model` and retrieval an item
//! gets under it.

use std::collections::BTreeSet;

use crate::client::ModelEntry;
use crate::error::{EvalError, Result};
use crate::suite::Item;

use super::{Retriever, Router};

/// The base model alone.
pub const BASE: &str = "base";
/// Each item's own-domain adapter (the base where its domain has none).
pub const ADAPTER: &str = "adapter";
/// The base model with retrieved passages.
pub const RAG: &str = "rag";
/// The own-domain adapter with passages retrieved within the item's domain.
pub const ADAPTER_RAG: &str = "adapter+rag";
/// The production ensemble: the router picks the adapter, retrieval within the routed domain.
pub const AUTO: &str = "auto";

/// What a variant does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Base,
    /// A served model (usually an adapter) by name.
    Named(String),
    OwnAdapter,
    Rag,
    AdapterRag,
    Auto,
}

/// A variant to run: its name in the results, and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub name: String,
    pub kind: Kind,
}

/// What the server serves.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The base model's name.
    pub base: String,
    /// Every served id.
    pub ids: BTreeSet<String>,
}

impl Served {
    /// The base is `base_model` when given (it must be served), else the first entry without a
    /// `parent` (adapters carry their base as `parent` on vLLM and switchboard).
    pub fn new(models: &[ModelEntry], base_model: Option<&str>) -> Result<Served> {
        let ids: BTreeSet<String> = models.iter().map(|m| m.id.clone()).collect();
        let base = match base_model {
            Some(name) if ids.contains(name) || ids.is_empty() => name.to_string(),
            Some(name) => {
                return Err(EvalError::BadVariant {
                    variant: BASE.to_string(),
                    reason: format!(
                        "the model {name:?} is not served; the server has: {}",
                        list(&ids)
                    ),
                })
            }
            None => models
                .iter()
                .find(|m| m.parent.is_none())
                .map(|m| m.id.clone())
                .ok_or_else(|| EvalError::BadVariant {
                    variant: BASE.to_string(),
                    reason: "/v1/models lists no base model (an entry without `parent`); name \
                             it with --model"
                        .to_string(),
                })?,
        };
        Ok(Served { base, ids })
    }

    /// The adapter serving `domain`, if one of that name is served.
    pub fn domain_adapter(&self, domain: &str) -> Option<&str> {
        self.ids
            .get(domain)
            .map(String::as_str)
            .filter(|name| *name != self.base)
    }
}

fn list(ids: &BTreeSet<String>) -> String {
    ids.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Checks every requested name and says what it means; unknown names, duplicates, and
/// retrieval or routing variants without a retriever or router are errors naming the variant.
pub(crate) fn plan(
    names: &[String],
    served: &Served,
    retriever: Option<&dyn Retriever>,
    router: Option<&dyn Router>,
) -> Result<Vec<Plan>> {
    if names.is_empty() {
        return Err(EvalError::BadVariant {
            variant: String::new(),
            reason: "no variant to run".to_string(),
        });
    }
    let mut seen = BTreeSet::new();
    let mut plans = Vec::new();
    for name in names {
        let name = name.trim();
        let bad = |reason: String| EvalError::BadVariant {
            variant: name.to_string(),
            reason,
        };
        if !seen.insert(name.to_string()) {
            return Err(bad("given twice".to_string()));
        }
        let kind = match name {
            BASE => Kind::Base,
            ADAPTER => Kind::OwnAdapter,
            RAG | ADAPTER_RAG if retriever.is_none() => {
                return Err(bad(
                    "needs a knowledge base to retrieve from (--kb)".to_string()
                ))
            }
            RAG => Kind::Rag,
            ADAPTER_RAG => Kind::AdapterRag,
            AUTO if router.is_none() => return Err(bad("needs a router".to_string())),
            AUTO => Kind::Auto,
            other if served.ids.contains(other) => Kind::Named(other.to_string()),
            _ => {
                return Err(bad(format!(
                    "unknown variant: use base, adapter, rag, adapter+rag, auto, or a served \
                     model ({})",
                    list(&served.ids)
                )))
            }
        };
        plans.push(Plan {
            name: name.to_string(),
            kind,
        });
    }
    Ok(plans)
}

/// Which `model` answers an item, and with what retrieval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub model: String,
    /// `Some(domain filter)` when passages are retrieved.
    pub retrieve: Option<Option<String>>,
    /// `auto`: the router's domain.
    pub routed_domain: Option<String>,
}

/// The target of `item` under `kind`.
pub(crate) fn target(
    kind: &Kind,
    item: &Item,
    served: &Served,
    router: Option<&dyn Router>,
) -> Target {
    let own = || {
        served
            .domain_adapter(&item.domain)
            .unwrap_or(&served.base)
            .to_string()
    };
    let plain = |model: String| Target {
        model,
        retrieve: None,
        routed_domain: None,
    };
    match kind {
        Kind::Base => plain(served.base.clone()),
        Kind::Named(name) => plain(name.clone()),
        Kind::OwnAdapter => plain(own()),
        Kind::Rag => Target {
            retrieve: Some(None),
            ..plain(served.base.clone())
        },
        Kind::AdapterRag => Target {
            retrieve: Some(Some(item.domain.clone())),
            ..plain(own())
        },
        Kind::Auto => {
            let Some(router) = router else {
                return plain(served.base.clone());
            };
            // Classification is a few microseconds of arithmetic: no need to leave the runtime.
            let route = router.route(&item.question);
            // As the server does (RagDefault::Auto): retrieval only for requests routed to a
            // loaded domain adapter, and within that domain; the base answers the rest plainly.
            match route
                .adapter
                .filter(|a| served.ids.contains(a) && *a != served.base)
            {
                Some(adapter) => Target {
                    model: adapter,
                    retrieve: Some(Some(route.domain.clone())),
                    routed_domain: Some(route.domain),
                },
                None => Target {
                    routed_domain: Some(route.domain),
                    ..plain(served.base.clone())
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Passage, Route};
    use crate::suite::Task;

    fn served() -> Served {
        let entry = |id: &str, parent: Option<&str>| ModelEntry {
            id: id.to_string(),
            parent: parent.map(str::to_string),
            root: None,
        };
        let models = [
            entry("qwen", None),
            entry("auto", Some("qwen")),
            entry("biology", Some("qwen")),
            entry("golden-a", Some("qwen")),
        ];
        Served::new(&models, None).expect("served")
    }

    struct Kb;
    impl Retriever for Kb {
        fn retrieve(&self, _: &str, _: Option<&str>) -> Result<Vec<Passage>> {
            Ok(Vec::new())
        }
    }
    struct ToBiology;
    impl Router for ToBiology {
        fn route(&self, _: &str) -> Route {
            Route {
                domain: "biology".into(),
                adapter: Some("biology".into()),
            }
        }
    }

    fn item(domain: &str) -> Item {
        Item {
            id: "1".into(),
            domain: domain.into(),
            question: "q".into(),
            task: Task::Generative {
                reference: "r".into(),
            },
        }
    }

    #[test]
    fn names_resolve_and_bad_ones_are_named() {
        let served = served();
        assert_eq!(served.base, "qwen");
        let names: Vec<String> = ["base", "adapter", "golden-a"].map(String::from).to_vec();
        let plans = plan(&names, &served, None, None).expect("plan");
        assert_eq!(plans[2].kind, Kind::Named("golden-a".into()));
        for (names, expected) in [
            (vec!["nope"], "unknown variant"),
            (vec!["base", "base"], "given twice"),
            (vec!["rag"], "--kb"),
            (vec!["auto"], "needs a router"),
        ] {
            let names: Vec<String> = names.into_iter().map(String::from).collect();
            let err = plan(&names, &served, None, None)
                .expect_err("bad")
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        let err = Served::new(&[], Some("x"))
            .map(|s| s.base)
            .expect("unlisted ok");
        assert_eq!(err, "x");
    }

    #[test]
    fn targets_follow_the_item_domain_and_the_router() {
        let served = served();
        let own = target(&Kind::OwnAdapter, &item("biology"), &served, None);
        assert_eq!(own.model, "biology");
        let none = target(&Kind::AdapterRag, &item("general"), &served, None);
        assert_eq!(
            (none.model.as_str(), none.retrieve),
            ("qwen", Some(Some("general".into())))
        );
        let rag = target(&Kind::Rag, &item("biology"), &served, None);
        assert_eq!((rag.model.as_str(), rag.retrieve), ("qwen", Some(None)));
        let auto = target(&Kind::Auto, &item("history"), &served, Some(&ToBiology));
        assert_eq!(auto.model, "biology");
        assert_eq!(auto.routed_domain.as_deref(), Some("biology"));
        let _ = plan(&["rag".to_string()], &served, Some(&Kb), None).expect("kb given");
    }
}
