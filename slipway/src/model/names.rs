//! Kubernetes name rules, shared by config validation and check kinds.

/// An RFC 1123 label: a-z, 0-9 and `-`, at most 63, not starting or ending with `-`
/// (Service, namespace and release names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An image repository (a name without tag or digest) by the distribution reference
/// grammar, as `container_image_dist_ref` parses it (tested against the reference Go
/// implementation): an optional registry host with a port, then `/`-separated
/// lowercase path components.
pub fn is_repository(s: &str) -> bool {
    container_image_dist_ref::ImgRef::new(s)
        .is_ok_and(|r| r.tag().is_none() && r.digest().is_none() && r.name().to_str() == s)
}

/// An image tag: a word character, then up to 127 word characters, `.` or `-`.
pub fn is_tag(t: &str) -> bool {
    let probe = format!("x:{t}");
    container_image_dist_ref::ImgRef::new(&probe).is_ok_and(|r| r.tag() == Some(t))
}

/// A name slipway prints and uses in step ids (a table key such as `[smoke.NAME]`):
/// letters, digits, `.`, `_` and `-`, at most 63 — no spaces, no control or escape
/// sequences.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A shell variable name: letters, digits and `_`, not starting with a digit.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An RFC 1123 subdomain: dot-separated labels, at most 253 (Secret names).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_by_the_reference_grammar() {
        for ok in [
            "sample",
            "slipway/sample",
            "registry.example.com/team/app",
            "localhost:5000/app",
            "kind-registry:5000/a/b",
            "a__b",
            "a--b.c_d",
        ] {
            assert!(is_repository(ok), "{ok}");
        }
        for bad in [
            "",
            "Sample",
            "a//b",
            "a/",
            "/a",
            "-a",
            "a-",
            "a___b",
            "a..b",
            "a b",
            "host:port/app",
            "registry.example.com:99999x/app",
            "a:b",
            "app@sha256",
        ] {
            assert!(!is_repository(bad), "{bad}");
        }
    }
}
