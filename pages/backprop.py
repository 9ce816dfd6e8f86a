"""Backpropagation: one step by hand, gradient flow during training, and the learning-rate range test."""

import streamlit as st

from ui.backprop_views import VIEWS
from ui.routing import require_router

require_router("pages/backprop.py")

st.title("Backpropagation")
st.caption("How a network learns: the loss says how wrong it is, backpropagation splits the blame among the weights "
           "with the chain rule, and gradient descent moves each weight a little against its gradient.")
view = st.radio("View", list(VIEWS), horizontal=True, key="bp_view")
VIEWS[view]()
