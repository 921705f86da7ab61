//! What the API trace may print. Passcodes, secrets and passwords are masked
//! as `*****` wherever they appear in a body or query string, whatever the
//! object, because a log is read by more people than the API is.

/// True for parameter names whose values must not be logged.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    // `dtmfSequence`: the keys a dial-out sends are often a PIN.
    n.contains("passcode") || n.contains("secret") || n.contains("password") || n == "pin" || n == "dtmfsequence"
}

/// A form body with secret values replaced by `*****`. Bytes that are not
/// UTF-8 are shown lossily; nothing is decoded, so what is shown is what came.
pub fn masked_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(name.trim()) => format!("{name}=*****"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The path and query for the trace line, with secret query values masked.
pub fn path_for_log(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", masked_body(query.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets() {
        assert_eq!(
            masked_body(b"&nonMemberAccess=true&passcode=1234&name=x&secret=abc&regenerateSecret=true"),
            "&nonMemberAccess=true&passcode=*****&name=x&secret=*****&regenerateSecret=*****"
        );
        assert_eq!(masked_body(b"sharedSecret=s&Password=p"), "sharedSecret=*****&Password=*****");
        assert_eq!(path_for_log("/api/v1/coSpaces", "filter=a&passcode=9"), "/api/v1/coSpaces?filter=a&passcode=*****");
        assert_eq!(masked_body(b"remoteParty=a@b&dtmfSequence=1234%23"), "remoteParty=a@b&dtmfSequence=*****");
    }
}
