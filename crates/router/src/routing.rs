//! From a decision to an adapter: the routing table of the server's config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classifier::Decision;
use crate::domain::Domain;

/// Default minimum confidence for sending a request to an adapter.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Where one domain's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Name of the LoRA adapter, as registered with the engine.
    pub adapter: String,
    /// A disabled route sends the domain's requests to the base model.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Maps domains to adapters, with a confidence threshold below which the base model answers.
///
/// Deserialises from a config section such as
/// `{"threshold": 0.6, "routes": {"security": {"adapter": "sec-v2"}}}`. A missing field takes
/// its default, but a `routes` map given replaces the default map entirely, and a domain
/// without a route is treated like a disabled one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingTable {
    /// Minimum [`Decision::confidence`] for using an adapter.
    pub threshold: f32,
    /// Route per domain; `general` never needs one.
    pub routes: BTreeMap<Domain, Route>,
}

impl Default for RoutingTable {
    /// Each adapter domain to the adapter of the same name, threshold
    /// [`DEFAULT_THRESHOLD`].
    fn default() -> Self {
        let routes = [
            Domain::Biology,
            Domain::History,
            Domain::Security,
            Domain::Teaching,
        ]
        .into_iter()
        .map(|domain| {
            let route = Route {
                adapter: domain.as_str().to_owned(),
                enabled: true,
            };
            (domain, route)
        })
        .collect();
        RoutingTable {
            threshold: DEFAULT_THRESHOLD,
            routes,
        }
    }
}

/// Why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// Sent to the domain's adapter.
    Routed,
    /// The classifier chose `general`: the base model answers.
    GeneralDomain,
    /// The classifier was not confident enough: the base model answers.
    BelowThreshold,
    /// The domain's route is disabled or missing: the base model answers.
    DomainDisabled,
    /// The domain's adapter is not loaded in the engine: the base model answers.
    AdapterNotLoaded,
}

impl RouteReason {
    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Routed => "routed",
            RouteReason::GeneralDomain => "general_domain",
            RouteReason::BelowThreshold => "below_threshold",
            RouteReason::DomainDisabled => "domain_disabled",
            RouteReason::AdapterNotLoaded => "adapter_not_loaded",
        }
    }
}

/// The result of routing one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteOutcome {
    /// The adapter to use, or `None` for the base model.
    pub adapter: Option<String>,
    /// Why.
    pub reason: RouteReason,
}

impl RouteOutcome {
    fn base(reason: RouteReason) -> Self {
        RouteOutcome {
            adapter: None,
            reason,
        }
    }
}

impl RoutingTable {
    /// Picks the adapter for `decision`. `is_loaded` tells whether the engine has an adapter of
    /// that name right now. The checks run in order: general domain, confidence threshold,
    /// route enabled, adapter loaded.
    pub fn route(&self, decision: &Decision, is_loaded: impl Fn(&str) -> bool) -> RouteOutcome {
        if decision.domain == Domain::General {
            return RouteOutcome::base(RouteReason::GeneralDomain);
        }
        if decision.confidence < self.threshold {
            return RouteOutcome::base(RouteReason::BelowThreshold);
        }
        let Some(route) = self
            .routes
            .get(&decision.domain)
            .filter(|route| route.enabled)
        else {
            return RouteOutcome::base(RouteReason::DomainDisabled);
        };
        if !is_loaded(&route.adapter) {
            return RouteOutcome::base(RouteReason::AdapterNotLoaded);
        }
        RouteOutcome {
            adapter: Some(route.adapter.clone()),
            reason: RouteReason::Routed,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decision(domain: Domain, confidence: f32) -> Decision {
        let rest = (1.0 - confidence) / 4.0;
        let mut probabilities = [rest; Domain::COUNT];
        probabilities[domain.index()] = confidence;
        Decision::from_probabilities(probabilities)
    }

    #[test]
    fn each_reason() {
        let table = RoutingTable::default();
        let everything = |_: &str| true;
        assert_eq!(
            table.route(&decision(Domain::Security, 0.9), everything),
            RouteOutcome {
                adapter: Some("security".to_owned()),
                reason: RouteReason::Routed
            }
        );
        let base = |reason| RouteOutcome {
            adapter: None,
            reason,
        };
        assert_eq!(
            table.route(&decision(Domain::General, 0.99), everything),
            base(RouteReason::GeneralDomain)
        );
        assert_eq!(
            table.route(&decision(Domain::History, 0.45), everything),
            base(RouteReason::BelowThreshold)
        );
        assert_eq!(
            table.route(&decision(Domain::Biology, 0.8), |name: &str| name
                != "biology"),
            base(RouteReason::AdapterNotLoaded)
        );

        let mut disabled = table.clone();
        if let Some(route) = disabled.routes.get_mut(&Domain::Teaching) {
            route.enabled = false;
        }
        disabled.routes.remove(&Domain::History);
        assert_eq!(
            disabled.route(&decision(Domain::Teaching, 0.8), everything),
            base(RouteReason::DomainDisabled)
        );
        assert_eq!(
            disabled.route(&decision(Domain::History, 0.8), everything),
            base(RouteReason::DomainDisabled)
        );
    }

    #[test]
    fn threshold_is_inclusive() {
        let table = RoutingTable::default();
        let outcome = table.route(&decision(Domain::Biology, DEFAULT_THRESHOLD), |_| true);
        assert_eq!(outcome.reason, RouteReason::Routed);
    }

    #[test]
    fn config_section_with_defaults_and_snake_case_reasons() {
        let table: RoutingTable = serde_json::from_str(
            r#"{"threshold": 0.7, "routes": {"security": {"adapter": "sec-v2"}}}"#,
        )
        .unwrap();
        assert_eq!(table.threshold, 0.7);
        assert_eq!(table.routes.len(), 1);
        assert_eq!(table.routes[&Domain::Security].adapter, "sec-v2");
        assert!(table.routes[&Domain::Security].enabled);

        let empty: RoutingTable = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, RoutingTable::default());
        let round_trip: RoutingTable =
            serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
        assert_eq!(round_trip, table);

        for reason in [
            RouteReason::Routed,
            RouteReason::GeneralDomain,
            RouteReason::BelowThreshold,
            RouteReason::DomainDisabled,
            RouteReason::AdapterNotLoaded,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
