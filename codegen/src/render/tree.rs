//! The module tree (`mod.rs`): nested `pub mod` blocks mirroring package names, each including
//! its package's file.

use askama::Template;

use crate::error::Error;
use crate::ident;

#[derive(Template)]
#[template(path = "mod.rs.txt", escape = "none")]
struct TreeView {
    lines: Vec<String>,
}

/// Renders `mod.rs` for the given package names (each has a `<package>.rs` beside it).
pub fn module_tree(packages: &[String]) -> Result<String, Error> {
    let mut sorted: Vec<&String> = packages.iter().collect();
    sorted.sort_by_key(|p| ident::package_modules(p));
    let mut lines = Vec::new();
    let mut open: Vec<String> = Vec::new();
    for package in sorted {
        let modules = ident::package_modules(package);
        let common = open.iter().zip(&modules).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            lines.push("}".to_owned());
        }
        open.truncate(common);
        for m in &modules[common..] {
            lines.push(format!("pub mod {m} {{"));
            open.push(m.clone());
        }
        lines.push(format!("include!({:?});", ident::package_file(package)));
    }
    lines.extend(open.iter().map(|_| "}".to_owned()));
    let text = TreeView { lines }.render().map_err(|e| Error::Render {
        template: "mod.rs.txt",
        subject: "the module tree".into(),
        message: e.to_string(),
    })?;
    super::check_parses("mod.rs.txt", "the module tree", &text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nests_packages_and_shares_prefixes() {
        let text = super::module_tree(&["google.api".into(), "google.type".into(), "".into(), "google.api.expr".into()]).unwrap();
        let compact: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            compact,
            r#"include!("_.rs"); pub mod google { pub mod api { include!("google.api.rs"); pub mod expr { include!("google.api.expr.rs"); } } pub mod r#type { include!("google.type.rs"); } }"#
        );
    }
}
