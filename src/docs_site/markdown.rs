//! Safe Markdown rendering for descriptions and the overview page.
//!
//! Markdown is rendered at generate time with pulldown-cmark. Raw HTML is never
//! passed through: HTML blocks and inline HTML become escaped text, link targets
//! with a dangerous scheme (`javascript:`, `data:`, …) are neutralized, and images
//! become plain links so viewing the page never fetches anything.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Renders Markdown to HTML that is safe to insert with `innerHTML`.
pub fn render_markdown(src: &str) -> String {
    if is_plain_sentence(src) {
        return plain_paragraph(src);
    }
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(src, options).map(sanitize_event);
    let mut out = String::with_capacity(src.len() + src.len() / 2 + 16);
    html::push_html(&mut out, events);
    out
}

/// True for one-line text that Markdown renders as a bare paragraph: it starts
/// with a letter, has no leading/trailing/double spaces and only letters, digits
/// and punctuation without Markdown meaning. Most descriptions look like this, and
/// skipping the parser for them keeps 5,000-model projects fast.
fn is_plain_sentence(src: &str) -> bool {
    let starts_with_letter = src.chars().next().is_some_and(char::is_alphabetic);
    starts_with_letter
        && !src.ends_with(' ')
        && !src.contains("  ")
        && src
            .chars()
            .all(|c| c.is_alphanumeric() || " ,.;:?'\"/%=+()-".contains(c))
}

/// What pulldown-cmark produces for a plain sentence: one paragraph (none of
/// the allowed characters needs escaping in element content).
fn plain_paragraph(src: &str) -> String {
    format!("<p>{src}</p>\n")
}

/// Rewrites one event so that the HTML writer can only emit safe markup.
fn sanitize_event(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::HtmlBlock) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::Paragraph),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        })
        | Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    }
}

/// Keeps http(s), mailto, fragment and relative URLs; anything else becomes `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lowered: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    let scheme_end = lowered.find(':');
    let path_start = lowered.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, path_start) {
        (Some(colon), Some(path)) => colon < path,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let allowed = ["http:", "https:", "mailto:"];
    if !has_scheme || allowed.iter().any(|scheme| lowered.starts_with(scheme)) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render_markdown;

    #[test]
    fn plain_sentence_fast_path_matches_the_parser() {
        use pulldown_cmark::{html, Parser};
        let samples = [
            "One row per customer.",
            "Order amount (in cents), see \"amount\" - 100% = total; really?",
            "Ünïcode wörds: ok/fine, it's",
            "Date of the first order: 2024-01-01",
        ];
        for sample in samples {
            assert!(super::is_plain_sentence(sample), "{sample}");
            let mut expected = String::new();
            html::push_html(&mut expected, Parser::new(sample));
            assert_eq!(render_markdown(sample), expected);
        }
        for markdown in [
            "1. item", "- item", "# h", "a  b", "a\nb", "a_b_", "x*y*", "<b>", "a & b", "x`y`",
            " lead",
        ] {
            assert!(!super::is_plain_sentence(markdown), "{markdown}");
        }
    }

    #[test]
    fn renders_basic_markdown() {
        let html = render_markdown("# Title\n\nSome **bold** and `code`.\n\n- a\n- b\n");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>a</li>"));
    }

    #[test]
    fn raw_html_is_escaped_never_passed_through() {
        let evil = "<script>alert(1)</script>\n\nInline <img src=x onerror=alert(1)> here";
        let html = render_markdown(evil);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn dangerous_link_schemes_are_neutralized() {
        let html = render_markdown(
            "[a](javascript:alert(1)) [b](JaVaScRiPt&#58;alert(1)) [c](data:text/html,x) \
             <javascript:alert(1)> [ok](https://example.com/x) [rel](#!/model/m)",
        );
        let lowered = html.to_lowercase();
        assert!(
            !lowered.contains("href=\"javascript") && !lowered.contains("href=\"data"),
            "{html}"
        );
        assert_eq!(lowered.matches("href=\"#\"").count(), 4, "{html}");
        assert!(html.contains("href=\"https://example.com/x\""));
        assert!(html.contains("href=\"#!/model/m\""));
    }

    #[test]
    fn images_become_links_so_nothing_is_fetched() {
        let html = render_markdown("![logo](https://example.com/logo.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/logo.png\">logo</a>"),
            "{html}"
        );
    }
}
