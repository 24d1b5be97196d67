pub fn template() -> &'static str {
    ""
}
