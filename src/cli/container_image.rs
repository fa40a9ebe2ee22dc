//! Where `run`/`create` get an image from: the name as the user typed it,
//! resolved to the layer directories and config a container needs.

use super::container::ImageInfo;
use super::{Context, Exit};

/// Docker's display form of a reference: `busybox` is `busybox:latest`.
pub fn display_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Resolves `name` for a new container.
pub fn resolve_for_container(ctx: &Context, name: &str) -> anyhow::Result<ImageInfo> {
    let _ = ctx.root()?;
    eprintln!("Unable to find image '{}' locally", display_reference(name));
    Err(Exit {
        code: 125,
        message: format!(
            "image {} is not in the local store and berth cannot pull yet: import or load it first",
            display_reference(name)
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(display_reference("busybox"), "busybox:latest");
        assert_eq!(display_reference("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            display_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(display_reference("a@sha256:00"), "a@sha256:00");
    }
}
