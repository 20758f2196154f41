//! `openapi.yaml` (kept by hand) and the server's route table must describe the same routes.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

#[test]
fn openapi_yaml_lists_exactly_the_served_routes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut documented = BTreeSet::new();
    for (route, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap().to_uppercase();
            documented.insert((method, route.as_str().unwrap().to_string()));
        }
    }
    let served: BTreeSet<(String, String)> = switchboard_server::routes()
        .into_iter()
        .map(|(route, method, _)| (method.to_string(), route.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}
