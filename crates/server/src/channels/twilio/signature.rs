//! Twilio's request signature (`X-Twilio-Signature`): how a webhook proves it comes from the
//! Twilio account whose auth token we hold.
//!
//! The signature is HMAC-SHA1, keyed with the auth token, over the full URL Twilio requested
//! followed by every POST parameter's name and value, the names sorted, a repeated name's
//! values sorted too (and, as Twilio's helper libraries do, a value repeated under one name
//! counted once); then base64 with padding. Twilio is not consistent about the port in the
//! URL it signs, so [`is_valid`] accepts the URL with its default port (`:443` for https,
//! `:80` for http) and without any port, as Twilio's helper libraries do.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The `X-Twilio-Signature` Twilio sends with a POST of `params` to `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    // HMAC accepts a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is Twilio's signature of a POST of `params` to `url` (or to `url` with
/// its default port added, or its port removed), compared in constant time.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let header = header.trim().as_bytes();
    let mut valid = subtle::Choice::from(0u8);
    for candidate in url_variants(url) {
        let expected = signature(auth_token, &candidate, params);
        // `ct_eq` on slices of different lengths is false without comparing the bytes; the
        // length of a signature is public (28 characters).
        valid |= expected.as_bytes().ct_eq(header);
    }
    bool::from(valid)
}

/// The URL without its port and with its port (the scheme's default one when it has none).
fn url_variants(url: &str) -> [String; 2] {
    let Some((scheme, rest)) = url.split_once("://") else {
        return [url.to_owned(), url.to_owned()];
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // The port follows the last ':' that is not inside an IPv6 literal's brackets.
    let port_start = host_port
        .rfind(':')
        .filter(|&colon| !host_port[colon..].contains(']'));
    let (host, port) = match port_start {
        Some(colon) => (&host_port[..colon], Some(&host_port[colon + 1..])),
        None => (host_port, None),
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let with = format!(
        "{scheme}://{userinfo}{host}:{}{tail}",
        port.unwrap_or(default_port)
    );
    [without, with]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twilio's published vectors: twilio-python, tests/unit/test_request_validator.py.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn voice_params() -> Vec<(String, String)> {
        // In the order a form would send them, not sorted.
        pairs(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn twilios_published_vector_is_computed() {
        assert_eq!(signature(TOKEN, URL, &voice_params()), EXPECTED);
        assert!(is_valid(TOKEN, URL, &voice_params(), EXPECTED));
    }

    #[test]
    fn repeated_names_are_signed_with_their_values_sorted_and_once() {
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            signature(TOKEN, URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        let mut reordered = params.clone();
        reordered.reverse();
        assert_eq!(
            signature(TOKEN, URL, &reordered),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn a_non_default_port_is_removed_on_https() {
        let url = URL.replace(".com", ".com:1234");
        assert!(is_valid(TOKEN, &url, &voice_params(), EXPECTED));
    }

    #[test]
    fn a_non_default_port_is_removed_on_http() {
        let url = URL.replace(".com", ".com:1234").replace("https", "http");
        assert!(is_valid(
            TOKEN,
            &url,
            &voice_params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
    }

    #[test]
    fn port_443_is_added_on_https() {
        assert!(is_valid(
            TOKEN,
            URL,
            &voice_params(),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        // And removed: a public URL written with :443 accepts the signature without it.
        let url = URL.replace(".com", ".com:443");
        assert!(is_valid(TOKEN, &url, &voice_params(), EXPECTED));
    }

    #[test]
    fn port_80_is_added_on_http() {
        let url = URL.replace("https", "http");
        assert!(is_valid(
            TOKEN,
            &url,
            &voice_params(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
    }

    #[test]
    fn unicode_values_are_signed_as_utf8() {
        // HMAC-SHA1 over the UTF-8 bytes, computed independently with Python's
        // hmac.new(b"12345", "https://mycompany.com/myapp.php?foo=1&bar=2BodyCafé ☕ 日本From+33612345678".encode(), sha1).
        let params = pairs(&[("From", "+33612345678"), ("Body", "Café ☕ 日本")]);
        let sig = signature(TOKEN, URL, &params);
        assert_eq!(sig, UNICODE_EXPECTED);
        assert!(is_valid(TOKEN, URL, &params, &sig));
        // The same text in another normalisation form is another signature.
        let decomposed = pairs(&[("From", "+33612345678"), ("Body", "Cafe\u{301} ☕ 日本")]);
        assert!(!is_valid(TOKEN, URL, &decomposed, &sig));
    }
    const UNICODE_EXPECTED: &str = "IKqzrFi0ddDE6VWZAnOQRYeIbs8=";

    #[test]
    fn an_ipv6_host_keeps_its_brackets() {
        assert_eq!(
            url_variants("http://[::1]:8080/hooks?x=1"),
            [
                "http://[::1]/hooks?x=1".to_owned(),
                "http://[::1]:8080/hooks?x=1".to_owned()
            ]
        );
        assert_eq!(
            url_variants("https://[::1]/hooks"),
            [
                "https://[::1]/hooks".to_owned(),
                "https://[::1]:443/hooks".to_owned()
            ]
        );
    }

    #[test]
    fn a_changed_parameter_is_refused() {
        let mut params = voice_params();
        params[2].1 = "0".into(); // Digits=1234 becomes 0
        assert!(!is_valid(TOKEN, URL, &params, EXPECTED));
        let mut added = voice_params();
        added.push(("Digits".into(), "1".into()));
        assert!(!is_valid(TOKEN, URL, &added, EXPECTED));
        let removed: Vec<_> = voice_params()
            .into_iter()
            .filter(|(k, _)| k != "Digits")
            .collect();
        assert!(!is_valid(TOKEN, URL, &removed, EXPECTED));
        // A value given to another parameter.
        let mut swapped = voice_params();
        swapped[0].1 = "+14158675309".into();
        swapped[3].1 = "+18005551212".into();
        assert!(!is_valid(TOKEN, URL, &swapped, EXPECTED));
    }

    #[test]
    fn a_changed_url_is_refused() {
        for url in [
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            "https://mycompany.com/otherapp.php?foo=1&bar=2",
            "https://evil.example/myapp.php?foo=1&bar=2",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com/myapp.php",
        ] {
            assert!(!is_valid(TOKEN, url, &voice_params(), EXPECTED), "{url}");
        }
    }

    #[test]
    fn another_auth_token_is_refused() {
        assert!(!is_valid("54321", URL, &voice_params(), EXPECTED));
    }

    #[test]
    fn a_truncated_empty_or_altered_header_is_refused() {
        for header in [
            "",
            " ",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8==",
            "RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            "rsoydt4t1cutdk1pdd93/vvr8b8=",
            "R",
        ] {
            assert!(!is_valid(TOKEN, URL, &voice_params(), header), "{header:?}");
        }
    }
}
