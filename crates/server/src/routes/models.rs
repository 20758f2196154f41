//! `GET /v1/models` and `GET /v1/models/{id}`: the base, the virtual `auto`, and every adapter,
//! with `root` and `parent` as vLLM reports them.

use axum::extract::{Path, State};
use axum::response::Response;

use super::json_response;
use crate::error::ApiError;
use crate::openai::{ModelCard, ModelList};
use crate::state::{AppState, AUTO_MODEL};

fn cards(state: &AppState) -> Vec<ModelCard> {
    let config = state.config();
    let base = config.served_model_name.clone();
    let max_model_len = state.engine().max_model_len();
    let card = |id: String, root: String, parent: Option<String>| ModelCard {
        id,
        object: "model",
        created: state.inner.created,
        owned_by: "switchboard",
        root,
        parent,
        max_model_len,
    };
    let mut cards = vec![
        card(base.clone(), config.model_root.clone(), None),
        card(
            AUTO_MODEL.to_string(),
            config.model_root.clone(),
            Some(base.clone()),
        ),
    ];
    for info in state.engine().registry().list() {
        let root = info
            .path
            .map_or_else(|| info.name.clone(), |p| p.display().to_string());
        cards.push(card(info.name, root, Some(base.clone())));
    }
    cards
}

pub(super) async fn list_models(State(state): State<AppState>) -> Response {
    json_response(&ModelList {
        object: "list",
        data: cards(&state),
    })
}

pub(super) async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    cards(&state)
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| json_response(&c))
        .ok_or(ApiError::ModelNotFound(id))
}
