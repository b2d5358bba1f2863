//! HTML in CSV cells (older counselling scrapes store answers as `<p>…&#34;…</p>`): known
//! tags are removed (block tags become line breaks) and entities are decoded. Only real tag
//! names are treated as tags, so text such as "a <3 b" or "x < y" survives.

const BLOCK_TAGS: &[&str] = &[
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "table",
    "hr",
    "pre",
];
const INLINE_TAGS: &[&str] = &[
    "a", "b", "i", "em", "strong", "span", "u", "font", "img", "sup", "sub", "code", "s", "strike",
    "small", "big", "td", "th", "tbody", "thead", "center",
];

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse().ok()?
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "hellip" => '…',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "ccedil" => 'ç',
        "uuml" => 'ü',
        "ouml" => 'ö',
        "auml" => 'ä',
        "ntilde" => 'ñ',
        "bull" => '•',
        "middot" => '·',
        _ => return None,
    })
}

/// Tag name of `<…>` at the start of `s` if it is a known tag: (name, length incl. `>`).
fn tag_at(s: &str) -> Option<(&str, usize, bool)> {
    let rest = s.strip_prefix('<')?;
    let (rest, closing) = match rest.strip_prefix('/') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    // Tags are short: look no further than 512 bytes, so a cell full of `<` stays linear.
    let window = &rest.as_bytes()[..rest.len().min(513)];
    let end = window.iter().position(|b| *b == b'>')?;
    let inner = &rest[..end];
    let name_len = inner
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let lower = name.to_ascii_lowercase();
    let known = BLOCK_TAGS.contains(&lower.as_str()) || INLINE_TAGS.contains(&lower.as_str());
    if !known || name.is_empty() {
        return None;
    }
    let block = BLOCK_TAGS.contains(&lower.as_str());
    Some((name, 1 + usize::from(closing) + end + 1, block))
}

/// Whether `s` looks like it holds HTML markup or entities.
fn looks_like_html(s: &str) -> bool {
    s.contains('<') && s.contains('>') || s.contains('&') && s.contains(';')
}

/// Removes known HTML tags and decodes entities; collapses the blank lines tags leave.
pub fn strip_html(s: &str) -> String {
    if !looks_like_html(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('<') {
            if let Some((_, len, block)) = tag_at(rest) {
                if block && !out.ends_with('\n') && !out.is_empty() {
                    out.push('\n');
                }
                i += len;
                continue;
            }
        } else if let Some(after) = rest.strip_prefix('&')
            && let Some(semi) = after.find(';').filter(|&p| p <= 10)
            && let Some(c) = entity(&after[..semi])
        {
            out.push(c);
            i += semi + 2;
            continue;
        }
        let ch = rest.chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    // Collapse runs of 3+ newlines that block tags leave behind.
    let mut collapsed = String::with_capacity(out.len());
    let mut newlines = 0;
    for c in out.chars() {
        if c == '\n' {
            newlines += 1;
            if newlines > 2 {
                continue;
            }
        } else {
            newlines = 0;
        }
        collapsed.push(c);
    }
    collapsed.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes_entities() {
        assert_eq!(
            strip_html(
                "<p>It&#39;s called &#34;triangulation&#34; &amp; it&rsquo;s common.</p><p>Second<br/>line</p>"
            ),
            "It's called \"triangulation\" & it’s common.\nSecond\nline"
        );
        assert_eq!(
            strip_html("<a href=\"https://x\">link</a> &#x2014; ok"),
            "link — ok"
        );
    }

    #[test]
    fn leaves_text_that_only_looks_like_markup() {
        assert_eq!(
            strip_html("I <3 my therapist & x < y > z"),
            "I <3 my therapist & x < y > z"
        );
        assert_eq!(strip_html("use <thinking> tags"), "use <thinking> tags");
        assert_eq!(strip_html("AT&T; &bogus; &#0;"), "AT&T; &bogus; &#0;");
        assert_eq!(strip_html("plain text"), "plain text");
    }
}
