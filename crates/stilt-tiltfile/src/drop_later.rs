//! Freeing a load's intermediate objects (every parsed entity, every object as JSON) takes
//! milliseconds that the user waiting for the load need not wait for.

/// Drops `value` on a thread of its own.
pub(crate) fn drop_later<T: Send + 'static>(value: T) {
    // Without a thread the closure, and the value in it, is dropped right here.
    let _ = std::thread::Builder::new()
        .name("stilt-drop".into())
        .spawn(move || drop(value));
}
