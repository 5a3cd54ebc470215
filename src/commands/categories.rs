//! `failup categories`: the scenarios, what they mean and what to do.

use crate::cli::CategoriesArgs;
use failup::error::Result;
use failup::taxonomy::Taxonomy;

pub fn run(args: CategoriesArgs) -> Result<()> {
    let taxonomy = Taxonomy::load(args.taxonomy.as_deref())?;
    // The command for looking at a taxonomy says what every command that scores with it says.
    if let Some(uneven) = taxonomy.uneven_prototype_counts() {
        let name = args
            .taxonomy
            .as_deref()
            .map_or("built-in".into(), |p| p.display().to_string());
        eprintln!("warning: taxonomy {name}: {uneven}");
    }
    let mut out = String::new();
    for s in &taxonomy.scenarios {
        out += &format!(
            "{}  {}\n\n{}\n\n  In classify's advice column:\n{}\n\n  Advice:\n",
            s.id,
            s.title,
            super::indented(&s.description, "  ", "  "),
            super::indented(&s.headline, "    ", "    "),
        );
        for a in &s.advice {
            out += &super::indented(a, "    - ", "      ");
            out.push('\n');
        }
        if args.prototypes {
            // Numbered as `classify --explain` names the nearest one (`passed_over#3`).
            out += &format!("\n  Prototypes ({}#N):\n", s.id);
            let width = s.prototypes.len().to_string().len();
            for (n, p) in s.prototypes.iter().enumerate() {
                out += &format!("    #{:<width$}  {p}\n", n + 1);
            }
        }
        out.push('\n');
    }
    super::print_out(&out)?;
    Ok(())
}
