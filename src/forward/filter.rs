//! Routing filters: which records a destination receives. Every condition that is set must
//! hold; a list matches when any of its entries does. Records a filter leaves out are passed
//! by the cursor like delivered ones.

use std::net::IpAddr;

use crate::source_match::SourceMatch;
use auditrelay_parsers::pri::{facility_code, severity_code};
use serde::Deserialize;

use super::view::RecordView;

/// `[forward.filter]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSection {
    /// The least severe level sent: `warning` sends emerg … warning.
    pub severity: Option<String>,
    /// Facility names or numbers.
    #[serde(default)]
    pub facility: Vec<String>,
    /// Host names; `*` matches any run of characters; case does not matter.
    #[serde(default)]
    pub host: Vec<String>,
    /// App names (the RFC 3164 tag), with `*` as in `host`.
    #[serde(default)]
    pub app: Vec<String>,
    /// Listener names, source IPs or CIDR blocks.
    #[serde(default)]
    pub source: Vec<String>,
    /// `rfc5424`, `rfc3164`, `raw`, or a dialect or payload name such as `cisco-ios`, `cef`.
    #[serde(default)]
    pub format: Vec<String>,
}

/// A validated filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    severity_max: Option<u8>,
    facilities: Vec<u8>,
    hosts: Vec<String>,
    apps: Vec<String>,
    sources: Vec<SourceMatch>,
    formats: Vec<String>,
}

/// `*`-glob match, ASCII case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

impl Filter {
    /// Validates a section; `Err((key, message))`.
    pub fn from_section(s: &FilterSection) -> Result<Filter, (String, String)> {
        let severity_max = match &s.severity {
            Some(text) => Some(severity_code(text).ok_or_else(|| {
                (
                    "severity".to_string(),
                    format!("{text:?} is not a severity (emerg … debug or 0–7)"),
                )
            })?),
            None => None,
        };
        let facilities = s
            .facility
            .iter()
            .map(|f| {
                facility_code(f)
                    .ok_or_else(|| ("facility".to_string(), format!("{f:?} is not a facility")))
            })
            .collect::<Result<_, _>>()?;
        let sources = s
            .source
            .iter()
            .map(|t| SourceMatch::parse(t).map_err(|m| ("source".to_string(), m)))
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            severity_max,
            facilities,
            hosts: s.host.clone(),
            apps: s.app.clone(),
            sources,
            formats: s.format.clone(),
        })
    }

    /// Whether the filter lets everything through (then records need not be read for it).
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    pub fn matches(&self, r: &RecordView<'_>) -> bool {
        if let Some(max) = self.severity_max {
            if r.severity().is_none_or(|s| s > max) {
                return false;
            }
        }
        if !self.facilities.is_empty() && r.facility().is_none_or(|f| !self.facilities.contains(&f))
        {
            return false;
        }
        let any_glob = |patterns: &[String], value: Option<&str>| {
            patterns.is_empty() || value.is_some_and(|v| patterns.iter().any(|p| glob(p, v)))
        };
        if !any_glob(&self.hosts, r.hostname.as_deref())
            || !any_glob(&self.apps, r.app_name.as_deref())
        {
            return false;
        }
        if !self.sources.is_empty() {
            let source = r.source.as_ref();
            let listener = source.and_then(|s| s.listener.as_deref());
            let ip = source
                .and_then(|s| s.ip.as_deref())
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            let hit = self.sources.iter().any(|m| m.matches(listener, ip));
            if !hit {
                return false;
            }
        }
        if !self.formats.is_empty() {
            let names = [r.format.as_deref(), r.dialect.as_deref()];
            if !self
                .formats
                .iter()
                .any(|f| names.contains(&Some(f.as_str())))
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(toml_text: &str) -> Filter {
        Filter::from_section(&toml::from_str(toml_text).unwrap()).unwrap()
    }

    const RECORD: &[u8] = br#"{"source":{"ip":"10.1.2.3","listener":"core"},"format":"rfc3164","dialect":"cisco-ios","pri":187,"hostname":"RTR-1.example","app_name":"%LINK-3-UPDOWN"}"#;

    #[test]
    fn conditions_combine() {
        let r = RecordView::parse(RECORD).unwrap();
        assert!(filter("").matches(&r));
        assert!(filter("severity = \"err\"").matches(&r));
        assert!(!filter("severity = \"crit\"").matches(&r));
        assert!(filter("facility = [\"local7\"]").matches(&r));
        assert!(!filter("facility = [\"auth\", \"4\"]").matches(&r));
        assert!(filter("host = [\"rtr-*\"]").matches(&r));
        assert!(!filter("host = [\"sw-*\"]").matches(&r));
        assert!(filter("source = [\"10.0.0.0/8\"]").matches(&r));
        assert!(filter("source = [\"core\"]").matches(&r));
        assert!(!filter("source = [\"192.168.0.0/16\", \"edge\"]").matches(&r));
        assert!(filter("format = [\"cisco-ios\"]").matches(&r));
        assert!(!filter("format = [\"rfc5424\"]").matches(&r));
        assert!(!filter("app = [\"sshd\"]\nhost = [\"*\"]").matches(&r));
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = |t: &str| {
            Filter::from_section(&toml::from_str(t).unwrap())
                .unwrap_err()
                .0
        };
        assert_eq!(bad("severity = \"loud\""), "severity");
        assert_eq!(bad("facility = [\"kernel\"]"), "facility");
        assert_eq!(bad("source = [\"10.0.0.0/40\"]"), "source");
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(!glob("a*c", "abd"));
        assert!(glob("*.example", "fw.EXAMPLE"));
    }
}
