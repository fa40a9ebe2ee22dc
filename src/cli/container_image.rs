//! How an image a container was created from is shown.

/// Docker's display form of a reference: `busybox` is `busybox:latest`.
pub fn display_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
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
