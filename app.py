"""Entry point: navigation and the sidebar (model pair, device, cache status, report). Nothing else."""

import streamlit as st

from pages._export import report_sidebar
from pages._widgets import config, sidebar

st.set_page_config(page_title=config().title, page_icon=":material/science:", layout="wide")
page = st.navigation(
    [  # Material icons: drawn from the icon font Streamlit ships, no emoji font needed
        st.Page("pages/overview.py", title="Overview / playground", icon=":material/home:", default=True),
        st.Page("pages/critical_regions.py", title="Critical regions", icon=":material/content_cut:"),
        st.Page("pages/safety_landscape.py", title="Safety landscape", icon=":material/landscape:"),
        st.Page("pages/spectra.py", title="Rank spectra", icon=":material/show_chart:"),
        st.Page("pages/lox.py", title="LoX", icon=":material/shield:"),
        st.Page("pages/attack_lab.py", title="Attack lab", icon=":material/gps_fixed:"),
        st.Page("pages/representations.py", title="Representations", icon=":material/explore:"),
        st.Page("pages/alignment_depth.py", title="Alignment depth", icon=":material/stairs:"),
    ]
)
sidebar()
report_sidebar()
page.run()
