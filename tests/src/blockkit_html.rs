//! A Slack Block Kit message laid out in HTML roughly as Slack's desktop client shows it, so a
//! browser can show what the on-call sees: the app's name, the attachment's colour bar, and
//! the blocks (header, section with mrkdwn text and fields, context, divider, actions with
//! buttons as links). mrkdwn: `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ```` ```pre``` ````
//! and `<url|label>` links; Slack's entities (`&amp;`, `&lt;`, `&gt;`) stay as they are, so
//! the page shows what Slack would. Each message is an `<article id="message-N">`; its blocks
//! carry the classes `bk-header`, `bk-section`, `bk-fields`, `bk-context`, `bk-divider`,
//! `bk-actions`, `bk-pre` and `bk-link`, for tests to find them.

use serde_json::Value;

/// The emoji shortcodes Backstop's alerts use, drawn with the fonts any machine has (a
/// headless test machine has no colour emoji font): a shape in the emoji's colour.
const EMOJI: &[(&str, &str, &str)] = &[
    (":red_circle:", "●", "#dd2e44"),
    (":rotating_light:", "◉", "#dd2e44"),
    (":hourglass:", "◔", "#c69026"),
    (":warning:", "▲", "#f4a623"),
    (":white_check_mark:", "✔", "#2eb67d"),
    (":large_green_circle:", "●", "#2eb67d"),
    (":snowflake:", "❄", "#5bc0de"),
    (":broom:", "■", "#a0522d"),
    (":arrows_counterclockwise:", "↻", "#1264a3"),
    (":building_construction:", "▣", "#c69026"),
    (":information_source:", "ℹ", "#1264a3"),
];

const STYLE: &str = r#"
body { font-family: "Lato", "Helvetica Neue", Arial, sans-serif; font-size: 15px; color: #1d1c1d;
       background: #fff; margin: 0; padding: 16px 20px; width: 860px; }
article { display: flex; gap: 8px; padding: 8px 0 16px; border-bottom: 1px solid #eee; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #4a154b; color: #fff;
          font-weight: 700; display: flex; align-items: center; justify-content: center; flex: none; }
.body { flex: 1; min-width: 0; }
.who { font-weight: 900; } .app { font-size: 10px; background: #e8e8e8; color: #616061;
       padding: 1px 3px; border-radius: 2px; margin: 0 4px; vertical-align: 2px; }
.fallback { margin: 2px 0 4px; }
.attachment { border-left: 4px solid #ddd; border-radius: 4px; padding: 2px 0 2px 12px; margin-top: 4px; }
.bk-header { font-size: 18px; font-weight: 900; margin: 6px 0 4px; }
.bk-section { margin: 6px 0; line-height: 1.45; overflow-wrap: anywhere; }
.bk-fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin: 6px 0; }
.bk-context { color: #616061; font-size: 12px; margin: 6px 0; }
.bk-divider { border: 0; border-top: 1px solid #ddd; margin: 10px 0; }
.bk-actions { display: flex; gap: 8px; margin: 8px 0; }
.bk-button { border: 1px solid #bbb; border-radius: 4px; padding: 3px 12px; font-weight: 700;
             color: #1d1c1d; text-decoration: none; }
.bk-button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.bk-button.danger { background: #e01e5a; color: #fff; border-color: #e01e5a; }
pre.bk-pre { background: #f8f8f8; border: 1px solid #ddd; border-radius: 4px; padding: 8px;
             margin: 4px 0; font: 12px/1.5 Monaco, Menlo, Consolas, monospace;
             white-space: pre-wrap; overflow-wrap: anywhere; }
code { color: #e01e5a; background: #f8f8f8; border: 1px solid #ddd; border-radius: 3px;
       padding: 0 3px; font: 12px Monaco, Menlo, Consolas, monospace; }
a.bk-link { color: #1264a3; text-decoration: none; }
.emoji { font-size: 0.9em; }
"#;

/// Escapes plain text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Slack's entities are already HTML; anything else that HTML would read as markup is escaped.
fn slack_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let entity = ["&amp;", "&lt;", "&gt;"]
            .into_iter()
            .find(|e| tail.starts_with(e));
        match entity {
            Some(entity) => {
                out.push_str(entity);
                rest = &tail[entity.len()..];
            }
            None => {
                out.push_str(&escape(&tail[..1]));
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn emoji(text: &str) -> String {
    EMOJI
        .iter()
        .fold(text.to_string(), |t, (code, glyph, colour)| {
            t.replace(
                code,
                &format!("<span class=\"emoji\" style=\"color: {colour}\">{glyph}</span>"),
            )
        })
}

/// `*x*`, `_x_`, `~x~` on one line: the marker pair must hug non-space text.
fn emphasis(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    'scan: while let Some(at) = rest.find(['*', '_', '~']) {
        let marker = &rest[at..at + 1];
        let inner_start = at + 1;
        if let Some(len) = rest[inner_start..].find(marker) {
            let inner = &rest[inner_start..inner_start + len];
            let boundary = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric());
            if boundary && !inner.is_empty() && !inner.starts_with(' ') && !inner.ends_with(' ') {
                let tag = match marker {
                    "*" => "b",
                    "_" => "i",
                    _ => "s",
                };
                out.push_str(&rest[..at]);
                out.push_str(&format!("<{tag}>{}</{tag}>", emphasis(inner)));
                rest = &rest[inner_start + len + 1..];
                continue 'scan;
            }
        }
        out.push_str(&rest[..inner_start]);
        rest = &rest[inner_start..];
    }
    out.push_str(rest);
    out
}

/// Inline mrkdwn (no ``` blocks): links and `code` are drawn first and kept aside, so
/// emphasis can span them (`*failed on `db`*` is bold throughout), then the prose around them.
fn inline(text: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['<', '`']) {
        plain.push_str(&rest[..at]);
        let tail = &rest[at..];
        let drawn = if tail.starts_with('<') {
            tail.find('>').map(|end| {
                let inside = &tail[1..end];
                let (url, label) = inside.split_once('|').unwrap_or((inside, inside));
                let link = format!(
                    "<a class=\"bk-link\" href=\"{}\">{}</a>",
                    slack_text(url),
                    emphasis(&slack_text(label))
                );
                (end, link)
            })
        } else {
            tail[1..].find('`').map(|end| {
                let code = format!("<code>{}</code>", slack_text(&tail[1..=end]));
                (end + 1, code)
            })
        };
        let Some((end, html)) = drawn else {
            plain.push_str(tail);
            rest = "";
            break;
        };
        plain.push_str(&format!("\u{1}{}\u{2}", kept.len()));
        kept.push(html);
        rest = &tail[end + 1..];
    }
    plain.push_str(rest);
    kept.iter()
        .enumerate()
        .fold(prose(&plain), |html, (i, piece)| {
            html.replace(&format!("\u{1}{i}\u{2}"), piece)
        })
}

fn prose(text: &str) -> String {
    text.split('\n')
        .map(|line| emphasis(&emoji(&slack_text(line))))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// mrkdwn as HTML: ```` ``` ```` blocks become `<pre class="bk-pre">`, the rest [`inline`].
pub fn mrkdwn(text: &str) -> String {
    let mut out = String::new();
    for (i, piece) in text.split("```").enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!(
                "<pre class=\"bk-pre\">{}</pre>",
                slack_text(piece.trim_matches('\n'))
            ));
        } else {
            out.push_str(&inline(piece.trim_matches('\n')));
        }
    }
    out
}

fn text_of(object: &Value) -> String {
    let text = object["text"].as_str().unwrap_or_default();
    match object["type"].as_str() {
        Some("mrkdwn") => mrkdwn(text),
        _ => emoji(&escape(text)),
    }
}

/// One block as HTML; a kind this page does not draw is said, not dropped.
pub fn block(block: &Value) -> String {
    match block["type"].as_str().unwrap_or_default() {
        "header" => format!("<div class=\"bk-header\">{}</div>", text_of(&block["text"])),
        "section" => {
            let mut html = String::from("<div class=\"bk-section\">");
            if block["text"].is_object() {
                html.push_str(&format!("<div>{}</div>", text_of(&block["text"])));
            }
            if let Some(fields) = block["fields"].as_array() {
                html.push_str("<div class=\"bk-fields\">");
                for field in fields {
                    html.push_str(&format!("<div>{}</div>", text_of(field)));
                }
                html.push_str("</div>");
            }
            html.push_str("</div>");
            html
        }
        "context" => {
            let elements: Vec<String> = block["elements"]
                .as_array()
                .map(|e| e.iter().map(text_of).collect())
                .unwrap_or_default();
            format!("<div class=\"bk-context\">{}</div>", elements.join(" "))
        }
        "divider" => "<hr class=\"bk-divider\">".into(),
        "actions" => {
            let buttons: Vec<String> = block["elements"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|button| {
                            format!(
                                "<a class=\"bk-button {}\" href=\"{}\">{}</a>",
                                escape(button["style"].as_str().unwrap_or_default()),
                                escape(button["url"].as_str().unwrap_or("#")),
                                text_of(&button["text"])
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("<div class=\"bk-actions\">{}</div>", buttons.join(""))
        }
        other => format!(
            "<div class=\"bk-context\">(a {} block, not drawn here)</div>",
            escape(other)
        ),
    }
}

/// One message (`text`, top-level `blocks`, `attachments` with `color` and `blocks`) as an
/// `<article id="message-{index}">`.
pub fn message(index: usize, message: &Value, at: &str) -> String {
    let mut html = format!(
        "<article id=\"message-{index}\"><div class=\"avatar\">B</div><div class=\"body\">\
         <div><span class=\"who\">Backstop</span><span class=\"app\">APP</span>\
         <span class=\"bk-context\">{}</span></div>",
        escape(at)
    );
    let blocks = |list: &Value| -> String {
        list.as_array()
            .map(|b| b.iter().map(block).collect())
            .unwrap_or_default()
    };
    if message["blocks"].is_array() {
        html.push_str(&blocks(&message["blocks"]));
    } else if message["attachments"].is_null() {
        html.push_str(&format!(
            "<div class=\"fallback\">{}</div>",
            mrkdwn(message["text"].as_str().unwrap_or_default())
        ));
    }
    for attachment in message["attachments"].as_array().into_iter().flatten() {
        html.push_str(&format!(
            "<div class=\"attachment\" style=\"border-left-color: {}\">{}</div>",
            escape(attachment["color"].as_str().unwrap_or("#dddddd")),
            blocks(&attachment["blocks"])
        ));
    }
    html.push_str("</div></article>");
    html
}

/// A page of messages, as a channel shows them one after another.
pub fn page(title: &str, messages: &[Value]) -> String {
    let body: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i + 1, m, "3:04 AM"))
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_is_drawn_as_slack_draws_it() {
        assert_eq!(
            mrkdwn(
                "*Fix* it &amp; run `x &lt; y`:\n```a \"b\"\nc```\n<https://e.x/?a=1&amp;b|logs> _now_"
            ),
            "<b>Fix</b> it &amp; run <code>x &lt; y</code>:<pre class=\"bk-pre\">a &quot;b&quot;\nc</pre>\
             <a class=\"bk-link\" href=\"https://e.x/?a=1&amp;b\">logs</a> <i>now</i>"
        );
        assert_eq!(mrkdwn("snake_case_name 2*3*4"), "snake_case_name 2*3*4");
        assert_eq!(
            mrkdwn("*failed on `db` &amp; <https://x|y>*"),
            "<b>failed on <code>db</code> &amp; <a class=\"bk-link\" href=\"https://x\">y</a></b>"
        );
        assert_eq!(
            mrkdwn(":red_circle: down"),
            "<span class=\"emoji\" style=\"color: #dd2e44\">●</span> down"
        );
    }
}
