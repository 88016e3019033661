//! The builtins' documentation as the loader registers it (`stilt_tiltfile::editor::builtins_doc`)
//! and what the editor gets from it: signature help, hover text and completion of namespace
//! members (`os.`, `config.`), which starlark_lsp does not offer.

use lsp_types::CompletionItem;
use lsp_types::CompletionItemKind;
use lsp_types::Documentation;
use lsp_types::MarkupContent;
use lsp_types::MarkupKind;
use lsp_types::ParameterInformation;
use lsp_types::ParameterLabel;
use lsp_types::SignatureHelp;
use lsp_types::SignatureInformation;
use starlark::docs::DocFunction;
use starlark::docs::DocItem;
use starlark::docs::DocMember;
use starlark::docs::DocModule;
use starlark::docs::DocParam;
use starlark::docs::DocString;
use starlark::docs::markdown::render_doc_item_no_link;

use crate::text::Arg;
use crate::text::CallSite;

/// Every Tiltfile global, documented.
#[derive(Debug, Clone)]
pub struct Builtins {
    pub module: DocModule,
}

impl Builtins {
    /// From the loader's own table.
    pub fn from_loader() -> Self {
        Builtins {
            module: stilt_tiltfile::editor::builtins_doc(),
        }
    }

    /// The item a dotted name (`k8s_yaml`, `os.path.join`) names.
    pub fn lookup(&self, dotted: &str) -> Option<&DocItem> {
        let mut parts = dotted.split('.');
        let mut item = self.module.members.get(parts.next()?)?;
        for p in parts {
            let DocItem::Module(m) = item else {
                return None;
            };
            item = m.members.get(p)?;
        }
        Some(item)
    }

    /// Every documented name, namespaces' members dotted (`os.getcwd`), sorted.
    pub fn all_names(&self) -> Vec<String> {
        fn walk(prefix: &str, m: &DocModule, out: &mut Vec<String>) {
            for (name, item) in m.members.iter() {
                let full = format!("{prefix}{name}");
                if let DocItem::Module(inner) = item {
                    walk(&format!("{full}."), inner, out);
                }
                out.push(full);
            }
        }
        let mut out = vec![];
        walk("", &self.module, &mut out);
        out.sort();
        out
    }

    /// Markdown for hovering over a builtin.
    pub fn hover(&self, dotted: &str) -> Option<String> {
        let item = self.lookup(dotted)?;
        Some(render_doc_item_no_link(dotted, item))
    }

    /// Completions for `ns.partial`: the members of a builtin namespace.
    pub fn member_completions(&self, ns: &str, partial: &str) -> Option<Vec<CompletionItem>> {
        let DocItem::Module(m) = self.lookup(ns)? else {
            return None;
        };
        Some(
            m.members
                .iter()
                .filter(|(name, _)| name.starts_with(partial))
                .map(|(name, item)| completion_item(name, &format!("{ns}.{name}"), item))
                .collect(),
        )
    }

    /// Signature help for the call the cursor is in, when it calls a builtin function.
    pub fn signature_help(&self, site: &CallSite) -> Option<SignatureHelp> {
        let DocItem::Member(DocMember::Function(f)) = self.lookup(&site.callee)? else {
            return None;
        };
        Some(signature(&site.callee, f, &site.arg))
    }
}

/// A completion entry for a documented item (`full` is its dotted name, for the docs).
pub fn completion_item(label: &str, full: &str, item: &DocItem) -> CompletionItem {
    CompletionItem {
        label: label.to_owned(),
        kind: Some(match item {
            DocItem::Member(DocMember::Function(_)) => CompletionItemKind::FUNCTION,
            DocItem::Module(_) => CompletionItemKind::MODULE,
            _ => CompletionItemKind::CONSTANT,
        }),
        detail: item.get_doc_summary().map(str::to_owned),
        documentation: Some(markdown(render_doc_item_no_link(full, item))),
        ..Default::default()
    }
}

fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    })
}

fn doc_text(d: &DocString) -> String {
    match &d.details {
        Some(details) => format!("{}\n\n{}", d.summary, details),
        None => d.summary.clone(),
    }
}

/// One parameter as shown in a signature: `name`, `name=default`, `*args`, `**kwargs`.
fn param_label(p: &DocParam, star: &str) -> String {
    let ty = p.typ.to_string();
    let ty = if ty == "typing.Any" || ty.is_empty() {
        String::new()
    } else {
        format!(": {ty}")
    };
    // Python's spacing: `name=default`, but `name: type = default`.
    match &p.default_value {
        Some(d) if ty.is_empty() => format!("{star}{}={d}", p.name),
        Some(d) => format!("{star}{}{ty} = {d}", p.name),
        None => format!("{star}{}{ty}", p.name),
    }
}

/// The signature of `name` with the parameter the argument lands on marked active.
pub fn signature(name: &str, f: &DocFunction, arg: &Arg) -> SignatureHelp {
    let ps = &f.params;
    // (parameter, label); a bare `*` separates keyword-only parameters when there is no *args.
    let mut shown: Vec<(Option<&DocParam>, String)> = vec![];
    for p in &ps.pos_only {
        shown.push((Some(p), param_label(p, "")));
    }
    if !ps.pos_only.is_empty() {
        shown.push((None, "/".into()));
    }
    for p in &ps.pos_or_named {
        shown.push((Some(p), param_label(p, "")));
    }
    match &ps.args {
        Some(p) => shown.push((Some(p), param_label(p, "*"))),
        None if !ps.named_only.is_empty() => shown.push((None, "*".into())),
        None => {}
    }
    for p in &ps.named_only {
        shown.push((Some(p), param_label(p, "")));
    }
    if let Some(p) = &ps.kwargs {
        shown.push((Some(p), param_label(p, "**")));
    }

    let mut label = format!("{name}(");
    let mut parameters = vec![];
    let mut index_of: Vec<Option<u32>> = vec![];
    for (i, (p, text)) in shown.iter().enumerate() {
        if i > 0 {
            label.push_str(", ");
        }
        let start = label.encode_utf16().count() as u32;
        label.push_str(text);
        let end = label.encode_utf16().count() as u32;
        // Separators are part of the label but not parameters.
        index_of.push(p.map(|_| parameters.len() as u32));
        if let Some(p) = p {
            parameters.push(ParameterInformation {
                label: ParameterLabel::LabelOffsets([start, end]),
                documentation: p.docs.as_ref().map(|d| markdown(doc_text(d))),
            });
        }
    }
    label.push(')');

    let positional: Vec<&DocParam> = ps.pos_only.iter().chain(&ps.pos_or_named).collect();
    let find = |target: &DocParam| {
        shown
            .iter()
            .position(|(p, _)| p.is_some_and(|p| std::ptr::eq(p, target)))
            .and_then(|i| index_of[i])
    };
    let active = match arg {
        Arg::Positional(n) => match positional.get(*n) {
            Some(p) => find(p),
            None => ps.args.as_ref().and_then(find),
        },
        Arg::Named(k) => positional
            .iter()
            .copied()
            .chain(&ps.named_only)
            .find(|p| &p.name == k)
            .and_then(find)
            .or_else(|| ps.kwargs.as_ref().and_then(find)),
    };
    SignatureHelp {
        signatures: vec![SignatureInformation {
            label,
            documentation: f.docs.as_ref().map(|d| markdown(doc_text(d))),
            parameters: Some(parameters),
            active_parameter: active,
        }],
        active_signature: Some(0),
        active_parameter: active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtins() -> Builtins {
        Builtins::from_loader()
    }

    fn param_names(h: &SignatureHelp) -> Vec<String> {
        let s = &h.signatures[0];
        s.parameters
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| match p.label {
                ParameterLabel::LabelOffsets([a, b]) => {
                    let units: Vec<u16> = s.label.encode_utf16().collect();
                    String::from_utf16(&units[a as usize..b as usize]).unwrap()
                }
                ParameterLabel::Simple(ref s) => s.clone(),
            })
            .collect()
    }

    #[test]
    fn signature_marks_the_parameter_the_argument_lands_on() {
        let b = builtins();
        let site = |callee: &str, arg: Arg| CallSite {
            callee: callee.into(),
            arg,
            start: 0,
        };
        let h = b
            .signature_help(&site("docker_build", Arg::Positional(1)))
            .unwrap();
        let names = param_names(&h);
        assert!(names[0].starts_with("ref"), "{names:?}");
        assert!(names[1].starts_with("context"), "{names:?}");
        assert_eq!(h.active_parameter, Some(1));
        assert!(h.signatures[0].label.starts_with("docker_build(ref"));

        let h = b
            .signature_help(&site("docker_build", Arg::Named("dockerfile".into())))
            .unwrap();
        let names = param_names(&h);
        let active = h.active_parameter.unwrap() as usize;
        assert!(names[active].starts_with("dockerfile"), "{names:?}");
        // The parameter's own line of the doc comment comes with it.
        let p = &h.signatures[0].parameters.as_ref().unwrap()[active];
        let Some(Documentation::MarkupContent(d)) = &p.documentation else {
            panic!("dockerfile has no documentation: {p:?}");
        };
        assert!(d.value.contains("Dockerfile"), "{}", d.value);

        let h = b
            .signature_help(&site("k8s_resource", Arg::Named("port_forwards".into())))
            .unwrap();
        let names = param_names(&h);
        assert!(
            names[h.active_parameter.unwrap() as usize].starts_with("port_forwards"),
            "{names:?}"
        );

        // Namespaced builtins too.
        let h = b
            .signature_help(&site("os.path.join", Arg::Positional(0)))
            .unwrap();
        assert!(h.signatures[0].label.starts_with("os.path.join("));

        assert!(
            b.signature_help(&site("no_such", Arg::Positional(0)))
                .is_none()
        );
        assert!(b.signature_help(&site("os", Arg::Positional(0))).is_none());
    }

    #[test]
    fn namespaces_complete_their_members() {
        let b = builtins();
        let items = b.member_completions("os", "get").unwrap();
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert!(labels.contains(&"getcwd"), "{labels:?}");
        assert!(labels.contains(&"getenv"), "{labels:?}");
        assert!(labels.iter().all(|l| l.starts_with("get")));
        let items = b.member_completions("config", "").unwrap();
        assert!(items.iter().any(|i| i.label == "define_string"));
        assert!(b.member_completions("docker_build", "").is_none());
        assert!(b.member_completions("nope", "").is_none());
    }

    #[test]
    fn hover_renders_the_builtins_docs() {
        let b = builtins();
        let h = b.hover("k8s_resource").unwrap();
        assert!(h.contains("k8s_resource"), "{h}");
        assert!(h.contains("port_forwards"), "{h}");
        assert!(b.hover("config.parse").is_some());
        assert!(b.hover("nope").is_none());
    }
}
