//! The page shell: inlined style and viewer, embedded data, security policy.

/// The viewer's stylesheet, inlined into every page.
const STYLE: &str = include_str!("assets/style.css");
/// The viewer script, inlined into every page.
const VIEWER: &str = include_str!("assets/viewer.js");

/// Assembles the page around the serialized project data.
///
/// The Content-Security-Policy allows no network access at all (`default-src
/// 'none'`) and runs only the script carrying this page's nonce, so even markup
/// that slipped into a description could neither execute nor phone home.
pub fn page(project: &str, data_json: &str) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let data = escape_json_for_script(data_json);
    let title = escape_html(project);
    let mut out = String::with_capacity(data.len() + STYLE.len() + VIEWER.len() + 2048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; \
         base-uri 'none'; form-action 'none'\">\n"
    ));
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    out.push_str("<meta name=\"generator\" content=\"sluice\">\n");
    out.push_str(&format!("<title>{title} · sluice docs</title>\n"));
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    out.push_str(BODY);
    out.push_str("<script type=\"application/json\" id=\"sluice-data\">");
    out.push_str(&data);
    out.push_str("</script>\n");
    out.push_str(&format!("<script nonce=\"{nonce}\">\n"));
    out.push_str(VIEWER);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// Static page skeleton; the viewer fills `#content` and `#sidebar`.
const BODY: &str = r##"<header id="topbar">
<a class="brand" href="#!/overview">sluice<span>docs</span></a>
<span id="project-name"></span>
<div id="search-wrap">
<input id="search" type="search" placeholder="Search models, columns, SQL…  ( / )" autocomplete="off" spellcheck="false" aria-label="Search">
<div id="search-results" hidden></div>
</div>
<a class="nav-link" href="#!/graph">Lineage graph</a>
</header>
<div id="layout">
<nav id="sidebar" aria-label="Project"></nav>
<main id="content"><p class="muted">Loading…</p></main>
</div>
<noscript><p>This documentation site needs JavaScript.</p></noscript>
"##;

/// Makes serialized JSON safe inside `<script>`: `<`, `>` and `&` can never open
/// a tag, and U+2028/U+2029 never break older JavaScript parsers. In JSON text
/// these characters only occur inside strings, where `\uXXXX` means the same.
pub fn escape_json_for_script(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len() + json.len() / 64);
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let replacement = match bytes[i] {
            b'<' => Some(("\\u003c", 1)),
            b'>' => Some(("\\u003e", 1)),
            b'&' => Some(("\\u0026", 1)),
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
            0xE2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                Some(0xA8) => Some(("\\u2028", 3)),
                Some(0xA9) => Some(("\\u2029", 3)),
                _ => None,
            },
            _ => None,
        };
        match replacement {
            // `i` is always a char boundary: an ASCII byte or a UTF-8 lead byte.
            Some((text, len)) => {
                out.push_str(&json[start..i]);
                out.push_str(text);
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&json[start..]);
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping_round_trips() {
        let value = serde_json::json!({"s": "</script><!-- & \u{2028}\u{2029} >"});
        let escaped = escape_json_for_script(&value.to_string());
        assert!(!escaped.contains('<') && !escaped.contains('>') && !escaped.contains('&'));
        assert!(!escaped.contains('\u{2028}') && !escaped.contains('\u{2029}'));
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn assets_cannot_close_their_own_tags() {
        assert!(!VIEWER.to_lowercase().contains("</script"));
        assert!(!STYLE.to_lowercase().contains("</style"));
    }

    #[test]
    fn title_is_escaped() {
        let page = page("<evil>", "{}");
        assert!(page.contains("<title>&lt;evil&gt; · sluice docs</title>"));
    }
}
