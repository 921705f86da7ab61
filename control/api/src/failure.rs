//! CMS errors: a `text/xml` body `<failureDetails><reason /></failureDetails>`.
//! Clients match on the reason element, so every error the API can give is a
//! value of [`Failure`] and nothing else reaches the wire — never a panic
//! message, never a bare 500.

use super::xml::XmlWriter;

/// One API error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An object named in the path or a parameter does not exist, e.g.
    /// `coSpaceDoesNotExist` (404 when it is the path's object, 400 when a parameter's).
    DoesNotExist {
        /// The CMS reason.
        reason: &'static str,
        /// The object is the path's own (404), not a parameter's (400).
        in_path: bool,
    },
    /// A parameter is missing, malformed or not allowed: `<parameterError parameter=".." error=".." />`.
    Parameter {
        /// The parameter's name.
        parameter: String,
        /// What is wrong with it (`invalidValue`, `missing`, ...).
        error: &'static str,
    },
    /// A named conflict or refusal, e.g. `duplicateCoSpaceUri` (400).
    Reason(&'static str),
    /// The path names no object type: `unrecognizedObject` (404).
    UnrecognizedObject,
    /// The verb is not allowed on this path: 405 with `invalidOperation`, the reason CMS gives.
    MethodNotAllowed,
    /// The body is larger than the API accepts (413).
    TooLarge,
    /// Something failed on our side (storage); answered 503 so clients retry.
    Unavailable,
}

impl From<confero_store::schema::Invalid> for Failure {
    fn from(invalid: confero_store::schema::Invalid) -> Failure {
        Failure::Parameter { parameter: invalid.parameter, error: invalid.error }
    }
}

impl Failure {
    /// A `parameterError` for `parameter` with `error` (e.g. `invalidValue`, `missing`).
    pub fn parameter(parameter: impl Into<String>, error: &'static str) -> Failure {
        Failure::Parameter { parameter: parameter.into(), error }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Failure::DoesNotExist { in_path: true, .. } | Failure::UnrecognizedObject => 404,
            // One status wherever CMS says `invalidOperation`.
            Failure::Reason("invalidOperation") => 405,
            Failure::DoesNotExist { in_path: false, .. } | Failure::Parameter { .. } | Failure::Reason(_) => 400,
            Failure::MethodNotAllowed => 405,
            Failure::TooLarge => 413,
            Failure::Unavailable => 503,
        }
    }

    /// The one-line XML body.
    pub fn body(&self) -> String {
        let mut w = XmlWriter::new();
        w.open("failureDetails", &[]);
        match self {
            Failure::DoesNotExist { reason, .. } | Failure::Reason(reason) => {
                w.empty(reason, &[]);
            }
            Failure::Parameter { parameter, error } => {
                w.empty("parameterError", &[("parameter", parameter), ("error", error)]);
            }
            Failure::UnrecognizedObject => {
                w.empty("unrecognizedObject", &[]);
            }
            Failure::MethodNotAllowed => {
                w.empty("invalidOperation", &[]);
            }
            Failure::TooLarge => {
                w.empty("requestTooLarge", &[]);
            }
            Failure::Unavailable => {
                w.empty("databaseNotReady", &[]);
            }
        }
        w.close("failureDetails");
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_codes() {
        let f = Failure::DoesNotExist { reason: "coSpaceDoesNotExist", in_path: true };
        assert_eq!(f.status(), 404);
        assert_eq!(f.body(), "<?xml version=\"1.0\"?><failureDetails><coSpaceDoesNotExist /></failureDetails>");
        assert_eq!(Failure::Reason("duplicateCoSpaceUri").status(), 400);
        assert_eq!(Failure::parameter("passcode", "invalidValue").status(), 400);
    }
}
