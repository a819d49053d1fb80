//! Charts drawn on the server as SVG, inline in the page: no script, no style attribute (the
//! content security policy forbids both), only presentation attributes.
//!
//! Each chart is an image (`role="img"`) named by its `<title>` and described by its
//! `<desc>`; the page follows it with the same figures as a table, for screen readers and
//! for anyone who wants the numbers. The chart paints its own white background, so its
//! colours keep their contrast whatever the page's theme.

use std::fmt::Write as _;

/// Colours with at least 4.5:1 contrast against white, distinct from one another.
pub const PALETTE: [&str; 8] = [
    "#0b5cad", "#116329", "#8250df", "#9a6700", "#1b7c83", "#bf3989", "#57606a", "#6e4c13",
];
/// The colour of failures.
pub const FAILURE: &str = "#a40e26";

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
/// Room under the plot for the day labels and the legend.
const BOTTOM: f64 = 72.0;
const INK: &str = "#1b1f24";
const GRID: &str = "#d0d7de";

/// One series of values, one a category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub label: String,
    pub colour: &'static str,
    pub values: Vec<i64>,
}

/// A chart's data and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// Unique on the page: the prefix of the title's and description's ids.
    pub id: String,
    pub title: String,
    pub description: String,
    /// Shown instead of the plot when every value is zero.
    pub no_data: String,
    /// The labels along the horizontal axis.
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

impl Chart {
    fn is_empty(&self) -> bool {
        self.categories.is_empty() || self.series.iter().all(|s| s.values.iter().all(|v| *v <= 0))
    }

    fn value(&self, series: usize, category: usize) -> i64 {
        self.series
            .get(series)
            .and_then(|s| s.values.get(category))
            .copied()
            .unwrap_or(0)
            .max(0)
    }

    /// The largest stacked total of a category.
    fn stacked_max(&self) -> i64 {
        (0..self.categories.len())
            .map(|c| {
                (0..self.series.len())
                    .map(|s| self.value(s, c))
                    .sum::<i64>()
            })
            .max()
            .unwrap_or(0)
    }

    /// The largest single value.
    fn single_max(&self) -> i64 {
        (0..self.categories.len())
            .flat_map(|c| (0..self.series.len()).map(move |s| (s, c)))
            .map(|(s, c)| self.value(s, c))
            .max()
            .unwrap_or(0)
    }
}

/// Escapes text for an XML attribute or element.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The top of the vertical axis: the maximum, rounded up to 1, 2 or 5 times a power of ten.
fn axis_top(max: i64) -> i64 {
    let mut step = 1_i64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= max {
                return step.saturating_mul(m).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn open(out: &mut String, chart: &Chart, kind: &str) {
    let id = xml_escape(&chart.id);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart chart-{kind}\" id=\"{id}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>",
        xml_escape(&chart.title),
        xml_escape(&chart.description),
    );
}

fn no_data(out: &mut String, chart: &Chart) {
    let _ = write!(
        out,
        "<text class=\"no-data\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\" \
         font-size=\"16\">{}</text></svg>",
        WIDTH / 2.0,
        HEIGHT / 2.0,
        xml_escape(&chart.no_data)
    );
}

/// The horizontal grid, the vertical axis's labels, the category labels and the legend.
fn frame(out: &mut String, chart: &Chart, top: i64) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    for (fraction, value) in [(0.0, 0), (0.5, top / 2), (1.0, top)] {
        if fraction == 0.5 && top % 2 != 0 {
            continue;
        }
        let y = TOP + plot_h * (1.0 - fraction);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\" \
             stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
             fill=\"{INK}\" font-size=\"12\">{value}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
        );
    }
    // At most eight labels along the bottom, counted back from the last.
    let n = chart.categories.len();
    let every = n.div_ceil(8).max(1);
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    for (i, label) in chart.categories.iter().enumerate() {
        if !(n - 1 - i).is_multiple_of(every) {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{INK}\" \
             font-size=\"11\">{}</text>",
            HEIGHT - BOTTOM + 16.0,
            xml_escape(label)
        );
    }
    // The legend: a swatch and the series' name, in rows of four.
    for (i, series) in chart.series.iter().enumerate() {
        let x = LEFT + (i % 4) as f64 * 165.0;
        let y = HEIGHT - BOTTOM + 36.0 + (i / 4) as f64 * 18.0;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" fill=\"{INK}\" font-size=\"12\">{}</text>",
            y - 10.0,
            series.colour,
            x + 16.0,
            xml_escape(&series.label)
        );
    }
}

/// A stacked bar chart: one bar a category, one segment a series, heights proportional to
/// the values. Each segment carries its figure in `data-value`.
pub fn stacked_bars(chart: &Chart) -> String {
    let mut out = String::new();
    open(&mut out, chart, "bars");
    if chart.is_empty() {
        no_data(&mut out, chart);
        return out;
    }
    let top = axis_top(chart.stacked_max());
    frame(&mut out, chart, top);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / chart.categories.len() as f64;
    let bar_w = (slot * 0.7).max(1.0);
    for (c, label) in chart.categories.iter().enumerate() {
        let x = LEFT + slot * c as f64 + (slot - bar_w) / 2.0;
        let mut base = TOP + plot_h;
        for (s, series) in chart.series.iter().enumerate() {
            let value = chart.value(s, c);
            if value == 0 {
                continue;
            }
            let h = plot_h * value as f64 / top as f64;
            base -= h;
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{x:.2}\" y=\"{base:.4}\" width=\"{bar_w:.2}\" \
                 height=\"{h:.4}\" fill=\"{}\" data-series=\"{}\" data-value=\"{value}\">\
                 <title>{}: {}, {value}</title></rect>",
                series.colour,
                xml_escape(&series.label),
                xml_escape(label),
                xml_escape(&series.label),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A line chart: one line a series, a dot on each value (with its figure in `data-value`).
pub fn lines(chart: &Chart) -> String {
    let mut out = String::new();
    open(&mut out, chart, "lines");
    if chart.is_empty() {
        no_data(&mut out, chart);
        return out;
    }
    let top = axis_top(chart.single_max());
    frame(&mut out, chart, top);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / chart.categories.len() as f64;
    for (s, series) in chart.series.iter().enumerate() {
        let points: Vec<(f64, f64, i64)> = (0..chart.categories.len())
            .map(|c| {
                let value = chart.value(s, c);
                let x = LEFT + slot * (c as f64 + 0.5);
                let y = TOP + plot_h * (1.0 - value as f64 / top as f64);
                (x, y, value)
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y, _)| format!("{x:.2},{y:.4}"))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"line\" points=\"{}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"2\" data-series=\"{}\"/>",
            path.join(" "),
            series.colour,
            xml_escape(&series.label)
        );
        for ((x, y, value), label) in points.iter().zip(&chart.categories) {
            if *value == 0 {
                continue;
            }
            let _ = write!(
                out,
                "<circle class=\"dot\" cx=\"{x:.2}\" cy=\"{y:.4}\" r=\"3\" fill=\"{}\" \
                 data-series=\"{}\" data-value=\"{value}\"><title>{}: {}, {value}</title>\
                 </circle>",
                series.colour,
                xml_escape(&series.label),
                xml_escape(label),
                xml_escape(&series.label),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use std::collections::HashMap;

    struct Element {
        name: String,
        attributes: HashMap<String, String>,
    }

    /// Parses `svg` as XML, failing on any error; returns every element and the text.
    fn parse(svg: &str) -> (Vec<Element>, String) {
        let mut reader = Reader::from_str(svg);
        let mut elements = Vec::new();
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) | Event::Empty(e) => {
                    let attributes = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            )
                        })
                        .collect();
                    elements.push(Element {
                        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                        attributes,
                    });
                }
                Event::Text(t) => text.push_str(&t.unescape().unwrap()),
                Event::Eof => break,
                _ => {}
            }
        }
        (elements, text)
    }

    fn chart(categories: &[&str], series: Vec<Series>) -> Chart {
        Chart {
            id: "c".into(),
            title: "Sign-ins <per> day".into(),
            description: "Successful & failed".into(),
            no_data: "No data".into(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            series,
        }
    }

    fn series(label: &str, values: &[i64]) -> Series {
        Series {
            label: label.into(),
            colour: PALETTE[0],
            values: values.to_vec(),
        }
    }

    fn bars(elements: &[Element]) -> Vec<(String, i64, f64)> {
        elements
            .iter()
            .filter(|e| e.attributes.get("class").map(String::as_str) == Some("bar"))
            .map(|e| {
                (
                    e.attributes["data-series"].clone(),
                    e.attributes["data-value"].parse().unwrap(),
                    e.attributes["height"].parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_stacked_bar_chart_is_well_formed_and_named_for_assistive_technology() {
        let svg = stacked_bars(&chart(
            &["11-01", "11-02"],
            vec![series("oath & co", &[3, 1]), series("<failed>", &[2, 0])],
        ));
        let (elements, text) = parse(&svg);
        let root = &elements[0];
        assert_eq!(root.name, "svg");
        assert_eq!(root.attributes["role"], "img");
        assert_eq!(root.attributes["aria-labelledby"], "c-title c-desc");
        assert!(
            elements.iter().any(|e| e.name == "title"
                && e.attributes.get("id").map(String::as_str) == Some("c-title"))
        );
        assert!(elements.iter().any(|e| e.name == "desc"));
        assert!(text.contains("Sign-ins <per> day"), "{text}");
        assert!(text.contains("oath & co"));
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP forbids it"
        );
    }

    #[test]
    fn bars_are_as_tall_as_their_values() {
        let svg = stacked_bars(&chart(
            &["a", "b", "c"],
            vec![series("x", &[4, 2, 1]), series("y", &[2, 0, 7])],
        ));
        let (elements, _) = parse(&svg);
        let bars = bars(&elements);
        assert_eq!(bars.len(), 5, "a segment for each value above zero");
        let per_unit = bars[0].2 / bars[0].1 as f64;
        for (label, value, height) in &bars {
            assert!(
                (height - per_unit * *value as f64).abs() < 0.01,
                "{label}: {value} drawn {height} high, {per_unit} a unit"
            );
        }
        // The tallest stack (8) fits in the plot, and the axis tops at 10.
        assert!(per_unit * 8.0 <= HEIGHT - TOP - BOTTOM + 0.01);
        assert!((per_unit * 10.0 - (HEIGHT - TOP - BOTTOM)).abs() < 0.01);
    }

    #[test]
    fn a_line_chart_puts_a_dot_on_each_value_at_its_height() {
        let svg = lines(&chart(
            &["a", "b", "c"],
            vec![series("locked", &[0, 5, 10])],
        ));
        let (elements, _) = parse(&svg);
        let dots: Vec<(i64, f64)> = elements
            .iter()
            .filter(|e| e.attributes.get("class").map(String::as_str) == Some("dot"))
            .map(|e| {
                (
                    e.attributes["data-value"].parse().unwrap(),
                    e.attributes["cy"].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(dots.len(), 2);
        let bottom = HEIGHT - BOTTOM;
        let (v1, y1) = dots[0];
        let (v2, y2) = dots[1];
        assert!(((bottom - y2) / (bottom - y1) - v2 as f64 / v1 as f64).abs() < 0.001);
        assert_eq!(elements.iter().filter(|e| e.name == "polyline").count(), 1);
    }

    #[test]
    fn a_chart_without_data_says_so() {
        for svg in [
            stacked_bars(&chart(&["a", "b"], vec![series("x", &[0, 0])])),
            lines(&chart(&[], vec![])),
        ] {
            let (elements, text) = parse(&svg);
            assert!(text.contains("No data"), "{svg}");
            assert!(
                elements
                    .iter()
                    .all(|e| e.attributes.get("class").map(String::as_str) != Some("bar"))
            );
            assert_eq!(elements[0].attributes["role"], "img");
        }
    }

    #[test]
    fn the_axis_tops_at_a_round_figure() {
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(1), 1);
        assert_eq!(axis_top(3), 5);
        assert_eq!(axis_top(8), 10);
        assert_eq!(axis_top(11), 20);
        assert_eq!(axis_top(4000), 5000);
    }
}
