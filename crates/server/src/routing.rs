//! [`DomainRouter`]: the trained domain classifier (`switchboard-router`) and the routing table
//! as the server's [`AutoRouter`], with decision metrics.

use metrics::{counter, histogram};
use switchboard_engine::ChatMessage;
use switchboard_router::{Classifier, RouteReason, RoutingTable, Turn};

use crate::pipeline::{AutoRouter, RouteDecision};

/// Routes `model: "auto"` requests with a classifier and a routing table.
pub struct DomainRouter {
    classifier: Classifier,
    table: RoutingTable,
}

impl DomainRouter {
    /// A router using `classifier` and `table`.
    pub fn new(classifier: Classifier, table: RoutingTable) -> Self {
        Self { classifier, table }
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }
}

impl AutoRouter for DomainRouter {
    fn route(&self, messages: &[ChatMessage], is_loaded: &dyn Fn(&str) -> bool) -> RouteDecision {
        let turns: Vec<Turn<'_>> = messages
            .iter()
            .map(|m| Turn {
                role: &m.role,
                content: &m.content,
            })
            .collect();
        let decision = self.classifier.classify(&turns);
        let outcome = self.table.route(&decision, |name| is_loaded(name));
        let domain = decision.domain.as_str();
        counter!("switchboard_router_decisions_total", "domain" => domain, "reason" => outcome.reason.as_str())
            .increment(1);
        histogram!("switchboard_router_confidence", "domain" => domain)
            .record(f64::from(decision.confidence));
        RouteDecision {
            adapter: outcome.adapter,
            domain: domain.to_string(),
            confidence: decision.confidence,
            reason: (outcome.reason != RouteReason::Routed)
                .then(|| outcome.reason.as_str().to_string()),
        }
    }
}
