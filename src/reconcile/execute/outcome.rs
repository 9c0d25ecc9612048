//! What an action's answer means for what comes next: whether a refused Create made
//! nothing (so its retry need not wait for List), and how long the slot or player is
//! held back (see [`Outcome`]).

use super::{ExecError, Outcome};
use crate::agora::{ApiError, ErrorClass, Refusal};
use crate::model::{Fixed, Live};

/// Whether an answer of `status` to a Create says that no player was created.
pub(super) fn nothing_created(status: u16) -> bool {
    matches!(status, 400..=499 | 500 | 502 | 503) && status != 409
}

/// A 400 about the UID: a retry under a fresh one may well succeed.
pub(super) fn uid_objection(refusal: &Refusal) -> bool {
    refusal.status == 400 && refusal.message.to_ascii_lowercase().contains("uid")
}

/// How an action's result holds its slot or player back: a 401 refuses the project's
/// credentials, another permanent refusal (400, 403, …) the action itself, unless it
/// objected to a UID the create already replaced. `wanted` is what the scene asked of the
/// slot, so a changed scene ends a rejection's pause.
pub fn outcome<T>(result: &Result<T, ExecError>, wanted: Option<(Live, Fixed)>) -> Outcome {
    let error = match result {
        Ok(_) => return Outcome::Done,
        Err(ExecError::Api(e)) => e,
        Err(ExecError::Store(_)) => return Outcome::Failed,
    };
    match error {
        ApiError::Status { refusal, .. } if refusal.status == 401 => Outcome::Unauthorized,
        ApiError::Status { refusal, .. }
            if error.class() == ErrorClass::Permanent && !uid_objection(refusal) =>
        {
            Outcome::Rejected {
                message: format!("HTTP {}: {}", refusal.status, refusal.message),
                wanted,
            }
        }
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agora::Op;

    fn refused(status: u16, message: &str) -> Result<(), ExecError> {
        Err(ExecError::Api(ApiError::Status {
            op: Op::Create,
            refusal: Refusal {
                status,
                message: message.into(),
                request_id: None,
                resource_id: None,
                retry_after: None,
            },
        }))
    }

    #[test]
    fn answers_that_say_nothing_was_created() {
        for status in [400, 401, 403, 404, 429, 500, 502, 503] {
            assert!(nothing_created(status), "{status}");
        }
        for status in [409, 504, 501, 200] {
            assert!(!nothing_created(status), "{status}");
        }
    }

    #[test]
    fn final_answers_hold_long_and_the_rest_retreat() {
        assert_eq!(outcome(&Ok(()), None), Outcome::Done);
        assert_eq!(outcome(&refused(401, "x"), None), Outcome::Unauthorized);
        assert_eq!(
            outcome(&refused(403, "not enabled"), None),
            Outcome::Rejected {
                message: "HTTP 403: not enabled".into(),
                wanted: None
            }
        );
        assert!(matches!(
            outcome(&refused(400, "Parameter channelName is invalid."), None),
            Outcome::Rejected { .. }
        ));
        for (status, message) in [
            (400, "Parameter uid is invalid."),
            (404, "gone"),
            (429, "slow down"),
            (500, "x"),
            (503, "x"),
            (504, "x"),
        ] {
            assert_eq!(outcome(&refused(status, message), None), Outcome::Failed);
        }
    }
}
