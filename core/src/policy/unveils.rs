//! Default unveils per promise and per task. (Owned by the sandbox work.)
