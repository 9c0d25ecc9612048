//! The REST operations proper, after auth, project and region checks passed.

use serde_json::json;

use super::Inner;
use super::error::ApiError;
use super::query::QueryParams;
use super::reply::Reply;
use super::state::{Api, Cursor};
use super::validate;
use crate::agora::wire::{
    CreateResponse, CreatedPlayer, ListResponse, ListedPlayer, PlayerStatus, Region,
};
use crate::ncs::notice::destroy_reason;

const CREATE_FIELDS_UID: &str = "player.uid,player.id,player.createTs,player.status";
const CREATE_FIELDS_ACCOUNT: &str = "player.account,player.id,player.createTs,player.status";
const LIST_FIELDS: &str = "player.name,player.streamUrl,player.channelName,player.uid,player.account,player.id,player.createTs,player.status";

/// Counts the request against its QPS windows, or refuses it with 429 (§1.10).
pub fn admit(inner: &Inner, app_id: &str, api: Api) -> Result<(), ApiError> {
    let qps = &inner.config.qps;
    let limit = match api {
        Api::CreateWithName => qps.create_with_name,
        Api::CreateWithoutName => qps.create_without_name,
        Api::Delete => qps.delete,
        Api::List => qps.list,
        Api::ListFiltered => qps.list_filtered,
        Api::Update => qps.update,
    };
    inner.with_state(|st, now| {
        let admitted = st
            .projects
            .get_mut(app_id)
            .is_some_and(|p| p.rates.entry(api).or_default().try_admit(now, limit));
        let result = if admitted {
            Ok(())
        } else {
            st.violations.qps += 1;
            Err(ApiError::RateLimited)
        };
        (result, Vec::new())
    })
}

/// Create (§1.4, §1.5): validation, uid/account uniqueness in the channel, 409 on a
/// duplicate name, then the quota.
pub fn create(
    inner: &Inner,
    app_id: &str,
    region: Option<Region>,
    body: &[u8],
    request_id: &str,
) -> Result<Reply, ApiError> {
    let req = validate::create(body)?;
    let reply = inner.with_state(|st, now| {
        let Some(project) = st.projects.get(app_id) else {
            return (Err(ApiError::NotEnabled), Vec::new());
        };
        let live = || project.players.iter().map(|l| &l.player);
        let same_user = live().any(|p| {
            p.channel_name == req.channel_name
                && ((req.uid.is_some_and(|u| u != 0) && p.uid == req.uid)
                    || (req.account.is_some() && p.account == req.account))
        });
        if same_user {
            let param = if req.uid.is_some() { "uid" } else { "account" };
            return (Err(ApiError::param(param)), Vec::new());
        }
        if let Some(existing) = live().find(|p| p.name.is_some() && p.name == req.name) {
            let existing_id = existing.id.clone();
            return (Err(ApiError::Conflict { existing_id }), Vec::new());
        }
        if project.players.len() >= inner.config.max_players {
            st.violations.quota += 1;
            return (Err(ApiError::Quota), Vec::new());
        }
        let due = now + inner.config.connect_delay;
        match st.insert(
            &inner.clock,
            app_id,
            req,
            region,
            now,
            due,
            request_id,
            false,
        ) {
            Some((p, event)) => (Ok(p), vec![event]),
            None => (Err(ApiError::NotEnabled), Vec::new()),
        }
    })?;
    inner.wake.notify_one();
    let fields = if reply.account.is_some() {
        CREATE_FIELDS_ACCOUNT
    } else {
        CREATE_FIELDS_UID
    };
    let body = CreateResponse {
        player: CreatedPlayer {
            id: reply.id.clone(),
            uid: reply.uid,
            account: reply.account,
            create_ts: reply.create_ts,
            status: Some(PlayerStatus::Connecting),
        },
        fields: Some(fields.into()),
    };
    Ok(Reply {
        body: Some(serde_json::to_value(body).map_err(|_| ApiError::Injected(500))?),
        resource_id: Some(reply.id),
    })
}

/// Delete (§1.2, §1.5): 200 with an empty body, NCS event 3 "Delete Request".
pub fn delete(inner: &Inner, app_id: &str, id: &str) -> Result<Reply, ApiError> {
    inner.with_state(|st, now| {
        match st.remove(
            &inner.clock,
            app_id,
            id,
            destroy_reason::DELETE_REQUEST,
            now,
        ) {
            Some(event) => (Ok(()), vec![event]),
            None => (Err(ApiError::NotFound), Vec::new()),
        }
    })?;
    Ok(Reply {
        body: None,
        resource_id: Some(id.to_string()),
    })
}

/// Update (§1.7): applied only when `sequence` is above the last applied one; an older
/// sequence still answers 200, as "the server applies the highest".
pub fn update(
    inner: &Inner,
    app_id: &str,
    id: &str,
    sequence: Option<&str>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let sequence = validate::sequence(sequence)?;
    let changes = validate::update(body)?;
    inner.with_state(|st, _| {
        let Some(live) = st.live_mut(app_id, id) else {
            return (Err(ApiError::NotFound), Vec::new());
        };
        let p = &mut live.player;
        if p.last_sequence.is_none_or(|last| sequence > last) {
            p.last_sequence = Some(sequence);
            if let Some(url) = changes.stream_url {
                p.stream_url = url;
            }
            if let Some(volume) = changes.audio_options.and_then(|a| a.volume) {
                p.volume = volume;
            }
        }
        (Ok(()), Vec::new())
    })?;
    Ok(Reply {
        body: None,
        resource_id: Some(id.to_string()),
    })
}

/// List (§1.5, §1.6): ascending `createTs`, players younger than `list_lag` hidden,
/// opaque continuation tokens, `end_token` on the last page.
pub fn list(inner: &Inner, app_id: &str, params: &QueryParams) -> Result<Reply, ApiError> {
    let page_size = validate::page_size(params.get("pageSize"))?;
    let filter = validate::filter(params.get("filter"))?;
    let token = params.get("pageToken").filter(|t| !t.is_empty());
    let lag = inner.config.list_lag;
    let end_token = inner.config.end_token.clone();
    let page = inner.with_state(|st, now| {
        let Some(project) = st.projects.get_mut(app_id) else {
            return (Err(ApiError::NotEnabled), Vec::new());
        };
        let after_seq = match token {
            None => 0,
            Some(t) => match project.cursors.get(t) {
                Some(c) if c.filter == filter => c.after_seq,
                _ => return (Err(ApiError::param("pageToken")), Vec::new()),
            },
        };
        let matching: Vec<_> = project
            .players
            .iter()
            .filter(|l| now.saturating_duration_since(l.created_at) >= lag)
            .filter(|l| filter.as_ref().is_none_or(|c| &l.player.channel_name == c))
            .collect();
        let total_size = matching.len() as u64;
        let rest: Vec<_> = matching.into_iter().filter(|l| l.seq > after_seq).collect();
        let page: Vec<_> = rest.iter().take(page_size).collect();
        let next_page_token = match page.last() {
            Some(last) if rest.len() > page.len() => {
                let t = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
                let cursor = Cursor {
                    after_seq: last.seq,
                    filter: filter.clone(),
                };
                (t, Some(cursor))
            }
            _ => (end_token, None),
        };
        let players = page
            .iter()
            .map(|l| ListedPlayer {
                id: l.player.id.clone(),
                name: l.player.name.clone(),
                stream_url: Some(l.player.stream_url.clone()),
                channel_name: Some(l.player.channel_name.clone()),
                uid: l.player.uid,
                account: l.player.account.clone(),
                create_ts: l.player.create_ts,
                status: Some(l.player.status),
            })
            .collect();
        let (token, cursor) = next_page_token;
        if let Some(cursor) = cursor {
            project.cursors.insert(token.clone(), cursor);
        }
        let page = ListResponse {
            total_size,
            players,
            fields: Some(LIST_FIELDS.into()),
            next_page_token: Some(token),
        };
        (Ok(page), Vec::new())
    })?;
    let body = serde_json::to_value(page).map_err(|_| ApiError::Injected(500))?;
    Ok(Reply {
        body: Some(json!(body)),
        resource_id: None,
    })
}
