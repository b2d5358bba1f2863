//! The page's charts: a histogram as an inline SVG bar chart.

use std::fmt::Write as _;

use serde_json::Value;

use super::esc;

/// A bar chart of one histogram as inline SVG.
pub(super) fn histogram_svg(title: &str, kind: &str, edges: &[Value], counts: &[Value]) -> String {
    let counts: Vec<u64> = counts.iter().map(|c| c.as_u64().unwrap_or(0)).collect();
    let edges: Vec<u64> = edges.iter().map(|e| e.as_u64().unwrap_or(0)).collect();
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, pad_l, pad_b) = (360.0, 150.0, 36.0, 34.0);
    let n = counts.len().max(1) as f64;
    let bw = (w - pad_l - 8.0) / n;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"histogram\" data-kind=\"{}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title>{}</title>",
        esc(kind),
        esc(title),
        esc(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad_l}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"axis\"/>",
        y = h - pad_b,
        x2 = w - 8.0
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"12\" class=\"tick\" text-anchor=\"end\">{max}</text>",
        pad_l - 4.0
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = (h - pad_b - 16.0) * c as f64 / max as f64;
        let x = pad_l + i as f64 * bw;
        let label = match (edges.get(i), edges.get(i + 1)) {
            (Some(a), Some(b)) => format!("{a}–{}", b.saturating_sub(1)),
            (Some(a), None) => format!("{a}+"),
            _ => String::new(),
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" class=\"bar\"><title>{}: {c}</title></rect>",
            x + 1.0,
            h - pad_b - bh,
            bw - 2.0,
            esc(&label)
        );
        if let Some(a) = edges.get(i) {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" transform=\"rotate(45 {:.1} {:.1})\">{a}</text>",
                x + 2.0,
                h - pad_b + 10.0,
                x + 2.0,
                h - pad_b + 10.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
