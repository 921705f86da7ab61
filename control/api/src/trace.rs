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
/// UTF-8 are shown lossily and what is shown is what came, but a name is
/// judged by what it decodes to, as the API reads it (`pass%63ode` is
/// `passcode`); a name that does not decode is masked too.
pub fn masked_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&decoded(name)) => format!("{name}=*****"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A form name as the API decodes it; one that does not decode is taken as
/// secret (it cannot be told apart).
fn decoded(name: &str) -> String {
    match confero_store::form::Form::parse(name.as_bytes()) {
        Ok(form) => form.pairs().first().map(|(n, _)| n.trim().to_string()).unwrap_or_default(),
        Err(_) => "password".to_string(),
    }
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
        // Encoded names are judged as the API decodes them.
        assert_eq!(masked_body(b"pass%63ode=1234&na%6De=x"), "pass%63ode=*****&na%6De=x");
        assert_eq!(masked_body(b"%50ASSCODE=1&+passcode=2"), "%50ASSCODE=*****&+passcode=*****");
        assert_eq!(masked_body(b"pass%zzode=1"), "pass%zzode=*****");
    }
}
