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

/// An image repository as the distribution reference grammar has it: an optional
/// registry host (with a port) and `/`-separated path components of lowercase letters
/// and digits, joined inside by one `.`, one or two `_`, or any number of `-`.
pub fn is_repository(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = s.split('/').collect();
    let first = parts[0];
    let is_host =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if is_host {
        let (host, port) = first.split_once(':').unwrap_or((first, ""));
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        let port_ok = port.is_empty() && !first.contains(':')
            || !port.is_empty() && port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit());
        if !host_ok || !port_ok {
            return false;
        }
        parts.remove(0);
    }
    parts.iter().all(|c| is_path_component(c))
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or one or more "-", between alphanumerics.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
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
