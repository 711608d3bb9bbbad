"""Entry point: navigation and the sidebar (model pair, device, cache status). Nothing else."""
import streamlit as st

from pages._widgets import config, sidebar

st.set_page_config(page_title=config().title, page_icon="🧪", layout="wide")
page = st.navigation([
    st.Page("pages/overview.py", title="Overview / playground", icon="🏠", default=True),
    st.Page("pages/critical_regions.py", title="Critical regions", icon="✂️"),
    st.Page("pages/safety_landscape.py", title="Safety landscape", icon="⛰️"),
    st.Page("pages/spectra.py", title="Rank spectra", icon="📉"),
    st.Page("pages/lox.py", title="LoX", icon="🛡️"),
    st.Page("pages/attack_lab.py", title="Attack lab", icon="🎯"),
    st.Page("pages/representations.py", title="Representations", icon="🧭"),
    st.Page("pages/alignment_depth.py", title="Alignment depth", icon="🪜"),   # issue #18
])
sidebar()
page.run()
